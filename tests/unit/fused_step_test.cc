// The fused backward + step (EmbeddingBag / Embedding ::fused_backward_step) against what it
// replaces, backward() with a sparse gradient followed by optimizer.step(), bit for bit: the
// weight, every optimizer state tensor and the step count, over several steps, for SGD, Adagrad,
// RowWiseAdagrad, SparseAdam, LazyAdam and LazyAdamW (maximize, weight decay, lr decay, amsgrad), modes sum (with and without
// per_sample_weights) and mean, padding_idx, scale_grad_by_freq, duplicate ids, empty bags, 1-D
// and 2-D input, int32 and int64 ids, float32 and float64, at 1, 2 and 3 threads. And bad input:
// every refused call leaves the table and the optimizer state exactly as they were.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "emb/emb.h"
#include "expect_error.h"
#include "runtime_internal.h"

namespace {

using namespace emb;
using namespace emb::optim;
using emb::testing::expect_error;

using MakeOpt = std::function<std::unique_ptr<Optimizer>(Parameter*)>;

struct NamedOpt {
  std::string name;
  MakeOpt make;
};

std::vector<NamedOpt> fused_optimizers() {
  return {
      {"RowWiseAdagrad",
       [](Parameter* p) {
         return std::make_unique<RowWiseAdagrad>(std::vector<Parameter*>{p},
                                                 RowWiseAdagradOptions(0.1));
       }},
      {"RowWiseAdagrad wd maximize",
       [](Parameter* p) {
         return std::make_unique<RowWiseAdagrad>(
             std::vector<Parameter*>{p},
             RowWiseAdagradOptions(0.05).weight_decay(0.3).maximize(true).initial_accumulator_value(
                 0.2));
       }},
      {"Adagrad lr_decay",
       [](Parameter* p) {
         return std::make_unique<Adagrad>(
             std::vector<Parameter*>{p},
             AdagradOptions(0.1).lr_decay(0.01).initial_accumulator_value(0.1));
       }},
      {"Adagrad maximize",
       [](Parameter* p) {
         return std::make_unique<Adagrad>(std::vector<Parameter*>{p},
                                          AdagradOptions(0.2).maximize(true));
       }},
      {"LazyAdam amsgrad",
       [](Parameter* p) {
         return std::make_unique<LazyAdam>(std::vector<Parameter*>{p},
                                           AdamOptions(0.01).amsgrad(true).weight_decay(0.1));
       }},
      {"LazyAdamW maximize",
       [](Parameter* p) {
         return std::make_unique<LazyAdamW>(std::vector<Parameter*>{p},
                                            AdamWOptions(0.01).maximize(true));
       }},
      {"SparseAdam",
       [](Parameter* p) {
         return std::make_unique<SparseAdam>(std::vector<Parameter*>{p},
                                             SparseAdamOptions(0.01).maximize(true));
       }},
      {"SGD",
       [](Parameter* p) {
         return std::make_unique<SGD>(std::vector<Parameter*>{p}, SGDOptions(0.2));
       }},
      {"SGD maximize",
       [](Parameter* p) {
         return std::make_unique<SGD>(std::vector<Parameter*>{p}, SGDOptions(0.3).maximize(true));
       }},
  };
}

Tensor random_tensor(std::mt19937_64& rng, const Shape& shape, DType dtype, double lo = -1,
                     double hi = 1) {
  Tensor t = Tensor::empty(shape, dtype);
  std::uniform_real_distribution<double> u(lo, hi);
  for (std::int64_t k = 0; k < t.numel(); ++k) t.set_double(k, u(rng));
  return t;
}

Tensor random_ids(std::mt19937_64& rng, const Shape& shape, std::int64_t rows, bool ids64) {
  std::uniform_int_distribution<std::int64_t> id(0, rows - 1);
  Tensor t = Tensor::empty(shape, ids64 ? DType::kInt64 : DType::kInt32);
  for (std::int64_t k = 0; k < t.numel(); ++k) t.set_double(k, static_cast<double>(id(rng)));
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

::testing::AssertionResult same_state(const Optimizer& a, const Optimizer& b) {
  const ParamState& sa = a.state(0);
  const ParamState& sb = b.state(0);
  if (sa.step != sb.step) {
    return ::testing::AssertionFailure() << "step " << sa.step << " vs " << sb.step;
  }
  if (sa.tensors.size() != sb.tensors.size()) {
    return ::testing::AssertionFailure() << "state tensor counts differ";
  }
  for (const auto& [key, t] : sa.tensors) {
    const auto it = sb.tensors.find(key);
    if (it == sb.tensors.end() || !same_bytes(t, it->second)) {
      return ::testing::AssertionFailure() << "state \"" << key << "\" differs";
    }
  }
  return ::testing::AssertionSuccess();
}

// Snapshot of a table and its optimizer state, to check that a refused call changed nothing.
struct Snapshot {
  Tensor weight;
  ParamState state;
  Snapshot(const Tensor& w, const Optimizer& opt) : weight(w.clone()), state(opt.state(0)) {
    for (auto& entry : state.tensors) entry.second = entry.second.clone();
  }
  ::testing::AssertionResult unchanged(const Tensor& w, const Optimizer& opt) const {
    if (!same_bytes(weight, w)) return ::testing::AssertionFailure() << "the weight changed";
    const ParamState& now = opt.state(0);
    if (now.step != state.step) return ::testing::AssertionFailure() << "the step count changed";
    for (const auto& [key, t] : state.tensors) {
      if (!same_bytes(t, now.tensors.at(key))) {
        return ::testing::AssertionFailure() << "state \"" << key << "\" changed";
      }
    }
    return ::testing::AssertionSuccess();
  }
};

// A bag layout case.
struct BagCase {
  EmbeddingBagMode mode;
  bool psw;
  std::optional<std::int64_t> padding_idx;
  bool sgf;
  bool two_d;
  bool ids64;
};

std::string describe(const BagCase& c) {
  return std::string("mode=") + mode_name(c.mode) + " psw=" + std::to_string(c.psw) +
         " pad=" + (c.padding_idx ? std::to_string(*c.padding_idx) : "none") +
         " sgf=" + std::to_string(c.sgf) + " 2d=" + std::to_string(c.two_d) +
         " ids64=" + std::to_string(c.ids64);
}

// Three steps of backward + step on one module and fused steps on its twin; equal after each.
void check_bag_case(const BagCase& c, const NamedOpt& named, DType dtype, std::int64_t dim,
                    std::uint64_t seed) {
  SCOPED_TRACE(describe(c) + " opt=" + named.name + " dtype=" + std::string(dtype_name(dtype)) +
               " dim=" + std::to_string(dim));
  std::mt19937_64 rng(seed);
  const std::int64_t rows = 9;  // small: many duplicates
  const Tensor w0 = random_tensor(rng, {rows, dim}, dtype);
  auto options = [&](const Tensor& w) {
    EmbeddingBagOptions o(rows, dim);
    o.mode(c.mode).sparse(true).scale_grad_by_freq(c.sgf)._weight(w);
    if (c.padding_idx) o.padding_idx(*c.padding_idx);
    return o;
  };
  EmbeddingBag unfused(options(w0.clone()));
  EmbeddingBag fused(options(w0.clone()));
  auto opt_u = named.make(&unfused.parameter());
  auto opt_f = named.make(&fused.parameter());
  for (int step = 0; step < 3; ++step) {
    Tensor input, offsets;
    std::int64_t bags;
    if (c.two_d) {
      bags = 4;
      input = random_ids(rng, {bags, 5}, rows, c.ids64);
    } else {
      input = random_ids(rng, {17}, rows, c.ids64);
      offsets = Tensor::from_vector<std::int64_t>({0, 3, 3, 9, 16}, {5});  // bag 1 is empty
      bags = 5;
    }
    if (c.padding_idx && input.numel() > 4) {
      input.set_double(1, static_cast<double>(*c.padding_idx));
      input.set_double(4, static_cast<double>(*c.padding_idx));
    }
    const Tensor psw = c.psw ? random_tensor(rng, input.shape(), dtype, 0.1, 2) : Tensor();
    const Tensor grad_out = random_tensor(rng, {bags, dim}, dtype);
    const Tensor pg_u = unfused.backward(input, offsets, grad_out, psw);
    opt_u->step();
    opt_u->zero_grad();
    const Tensor pg_f = fused.fused_backward_step(input, offsets, grad_out, *opt_f, psw);
    ASSERT_FALSE(fused.parameter().has_grad());
    ASSERT_TRUE(same_bytes(unfused.weight(), fused.weight())) << "weight after step " << step;
    ASSERT_TRUE(same_state(*opt_u, *opt_f)) << "after step " << step;
    ASSERT_EQ(pg_u.defined(), pg_f.defined());
    if (pg_u.defined()) {
      ASSERT_TRUE(same_bytes(pg_u, pg_f)) << "per_sample_weights gradient";
    }
  }
  EXPECT_FALSE(same_bytes(w0, fused.weight())) << "the steps changed nothing";
}

class ThreadCounts : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    saved_ = get_num_threads();
    set_num_threads(GetParam());
    detail::set_min_work_per_thread(1);  // small inputs split over threads too
  }
  void TearDown() override {
    set_num_threads(saved_);
    detail::set_min_work_per_thread(std::int64_t{1} << 15);
  }

 private:
  int saved_ = 1;
};

using FusedBagStep = ThreadCounts;
using FusedEmbeddingStep = ThreadCounts;

TEST_P(FusedBagStep, EqualsBackwardThenStep) {
  const std::vector<BagCase> cases = {
      {EmbeddingBagMode::kSum, false, std::nullopt, false, false, true},
      {EmbeddingBagMode::kSum, true, std::nullopt, false, false, false},
      {EmbeddingBagMode::kSum, true, 2, true, false, true},
      {EmbeddingBagMode::kSum, false, 0, true, true, false},
      {EmbeddingBagMode::kMean, false, std::nullopt, false, false, true},
      {EmbeddingBagMode::kMean, false, 3, true, false, false},
      {EmbeddingBagMode::kMean, false, 2, false, true, true},
  };
  std::uint64_t seed = 100 * static_cast<std::uint64_t>(GetParam());
  for (const BagCase& c : cases) {
    for (const NamedOpt& named : fused_optimizers()) {
      for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
        for (std::int64_t dim : {1, 7, 16, 33}) check_bag_case(c, named, dtype, dim, ++seed);
      }
    }
  }
}

TEST_P(FusedEmbeddingStep, EqualsBackwardThenStep) {
  std::uint64_t seed = 1000 * static_cast<std::uint64_t>(GetParam());
  for (const NamedOpt& named : fused_optimizers()) {
    for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
      for (std::int64_t dim : {1, 8, 19}) {
        for (int variant = 0; variant < 3; ++variant) {  // plain, padding, padding + sgf
          SCOPED_TRACE(named.name + " " + std::string(dtype_name(dtype)) +
                       " dim=" + std::to_string(dim) + " variant=" + std::to_string(variant));
          std::mt19937_64 rng(++seed);
          const std::int64_t rows = 6;
          const Tensor w0 = random_tensor(rng, {rows, dim}, dtype);
          auto options = [&](const Tensor& w) {
            EmbeddingOptions o(rows, dim);
            o.sparse(true)._weight(w).scale_grad_by_freq(variant == 2);
            if (variant > 0) o.padding_idx(1);
            return o;
          };
          Embedding unfused(options(w0.clone()));
          Embedding fused(options(w0.clone()));
          auto opt_u = named.make(&unfused.parameter());
          auto opt_f = named.make(&fused.parameter());
          for (int step = 0; step < 3; ++step) {
            const Tensor input = random_ids(rng, {3, 5}, rows, step % 2 == 0);
            const Tensor grad_out = random_tensor(rng, {3, 5, dim}, dtype);
            unfused.backward(input, grad_out);
            opt_u->step();
            opt_u->zero_grad();
            fused.fused_backward_step(input, grad_out, *opt_f);
            ASSERT_TRUE(same_bytes(unfused.weight(), fused.weight())) << "step " << step;
            ASSERT_TRUE(same_state(*opt_u, *opt_f)) << "step " << step;
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, FusedBagStep, ::testing::Values(1, 2, 3));
INSTANTIATE_TEST_SUITE_P(Threads, FusedEmbeddingStep, ::testing::Values(1, 2, 3));

// A step whose ids are all padding (or empty input) still counts, as an empty sparse gradient
// does in step().
TEST(FusedStep, AllPaddingCountsAsAStep) {
  EmbeddingBag bag(EmbeddingBagOptions(5, 4).mode(EmbeddingBagMode::kSum).sparse(true).padding_idx(0));
  EmbeddingBag twin(EmbeddingBagOptions(5, 4).mode(EmbeddingBagMode::kSum).sparse(true).padding_idx(0)._weight(bag.weight().clone()));
  RowWiseAdagrad opt({&bag.parameter()}, RowWiseAdagradOptions(0.1));
  RowWiseAdagrad opt_twin({&twin.parameter()}, RowWiseAdagradOptions(0.1));
  const Tensor ids = Tensor::from_vector<std::int64_t>({0, 0}, {1, 2});
  const Tensor g = Tensor::full({1, 4}, 1.0, DType::kFloat32);
  const Tensor before = bag.weight().clone();
  bag.fused_backward_step(ids, {}, g, opt);
  twin.backward(ids, {}, g);
  opt_twin.step();
  EXPECT_EQ(opt.state(0).step, 1);
  EXPECT_TRUE(same_state(opt, opt_twin));
  EXPECT_TRUE(same_bytes(before, bag.weight()));
}

// grad_output that lives inside the table being updated: read as it was before the step, as the
// unfused path (whose gradient is a copy) reads it.
TEST(FusedStep, GradOutputAliasingTheTable) {
  for (bool mean : {false, true}) {
    std::mt19937_64 rng(3);
    const Tensor w0 = random_tensor(rng, {8, 4}, DType::kFloat32);
    auto make = [&] {
      return EmbeddingBag(EmbeddingBagOptions(8, 4)
                              .mode(mean ? EmbeddingBagMode::kMean : EmbeddingBagMode::kSum)
                              .sparse(true)
                              ._weight(w0.clone()));
    };
    EmbeddingBag unfused = make();
    EmbeddingBag fused = make();
    SGD opt_u({&unfused.parameter()}, SGDOptions(0.5));
    SGD opt_f({&fused.parameter()}, SGDOptions(0.5));
    const Tensor ids = Tensor::from_vector<std::int64_t>({0, 1, 2, 1, 0, 3}, {3, 2});
    // grad_output = rows 0..2 of each module's own table.
    const Tensor g_u = Tensor::view(unfused.weight().raw_data(), {3, 4}, DType::kFloat32);
    const Tensor g_f = Tensor::view(fused.weight().raw_data(), {3, 4}, DType::kFloat32);
    unfused.backward(ids, {}, g_u);
    opt_u.step();
    fused.fused_backward_step(ids, {}, g_f, opt_f);
    EXPECT_TRUE(same_bytes(unfused.weight(), fused.weight())) << "mean " << mean;
  }
}

// ---------------------------------------------------------------------------------------------
// Refused calls change nothing

struct Fixture {
  EmbeddingBag bag{EmbeddingBagOptions(10, 4).mode(EmbeddingBagMode::kSum).sparse(true)};
  Tensor ids = Tensor::from_vector<std::int64_t>({1, 2, 3, 4}, {4});
  Tensor offsets = Tensor::from_vector<std::int64_t>({0, 2}, {2});
  Tensor grad = Tensor::full({2, 4}, 0.5, DType::kFloat32);
};

TEST(FusedStepErrors, BadInputChangesNothing) {
  Fixture f;
  RowWiseAdagrad opt({&f.bag.parameter()}, RowWiseAdagradOptions(0.1));
  f.bag.fused_backward_step(f.ids, f.offsets, f.grad, opt);  // a state worth keeping
  const Snapshot snap(f.bag.weight(), opt);
  const Tensor bad_id = Tensor::from_vector<std::int64_t>({1, 2, 3, 10}, {4});
  expect_error<IndexError>(
      [&] { f.bag.fused_backward_step(bad_id, f.offsets, f.grad, opt); },
      {"EmbeddingBag::fused_backward_step", "input[3] = 10", "10 rows"});
  EXPECT_TRUE(snap.unchanged(f.bag.weight(), opt));
  const Tensor bad_offsets = Tensor::from_vector<std::int64_t>({0, 5}, {2});
  expect_error<ValueError>([&] { f.bag.fused_backward_step(f.ids, bad_offsets, f.grad, opt); },
                           "offsets[1] = 5");
  const Tensor bad_grad = Tensor::full({3, 4}, 0.5, DType::kFloat32);
  expect_error<ValueError>([&] { f.bag.fused_backward_step(f.ids, f.offsets, bad_grad, opt); },
                           "grad_output has shape [3, 4]");
  const Tensor grad64 = Tensor::full({2, 4}, 0.5, DType::kFloat64);
  expect_error<ValueError>([&] { f.bag.fused_backward_step(f.ids, f.offsets, grad64, opt); },
                           "grad_output has dtype float64");
  const Tensor bad_psw = Tensor::full({3}, 1.0, DType::kFloat32);
  expect_error<ValueError>(
      [&] { f.bag.fused_backward_step(f.ids, f.offsets, f.grad, opt, bad_psw); },
      "per_sample_weights has shape [3]");
  EXPECT_TRUE(snap.unchanged(f.bag.weight(), opt));
  EXPECT_FALSE(f.bag.parameter().has_grad());
}

TEST(FusedStepErrors, EmbeddingBadIdChangesNothing) {
  Embedding table(EmbeddingOptions(6, 3).sparse(true));
  Adagrad opt({&table.parameter()}, AdagradOptions(0.1));
  const Snapshot snap(table.weight(), opt);
  const Tensor ids = Tensor::from_vector<std::int64_t>({0, 6}, {2});
  expect_error<IndexError>(
      [&] { table.fused_backward_step(ids, Tensor::full({2, 3}, 1.0, DType::kFloat32), opt); },
      {"Embedding::fused_backward_step", "6"});
  EXPECT_TRUE(snap.unchanged(table.weight(), opt));
}

TEST(FusedStepErrors, OptimizerMismatches) {
  Fixture f;
  Parameter other(Tensor::zeros({10, 4}, DType::kFloat32));
  {  // the weight is not the optimizer's
    RowWiseAdagrad opt({&other}, RowWiseAdagradOptions(0.1));
    const Snapshot snap(f.bag.weight(), opt);
    expect_error<ValueError>([&] { f.bag.fused_backward_step(f.ids, f.offsets, f.grad, opt); },
                             "not one of the RowWiseAdagrad optimizer's parameters");
    EXPECT_TRUE(snap.unchanged(f.bag.weight(), opt));
  }
  {  // unsupported optimizers and options
    SGD momentum({&f.bag.parameter()}, SGDOptions(0.1).momentum(0.9));
    expect_error<NotImplementedError>(
        [&] { f.bag.fused_backward_step(f.ids, f.offsets, f.grad, momentum); },
        "SGD without momentum");
    SGD sgd_wd({&f.bag.parameter()}, SGDOptions(0.1).weight_decay(0.1));
    expect_error<NotImplementedError>(
        [&] { f.bag.fused_backward_step(f.ids, f.offsets, f.grad, sgd_wd); }, "weight_decay");
    Adagrad ada_wd({&f.bag.parameter()}, AdagradOptions(0.1).weight_decay(0.1));
    expect_error<NotImplementedError>(
        [&] { f.bag.fused_backward_step(f.ids, f.offsets, f.grad, ada_wd); }, "weight_decay");
    Adam adam({&f.bag.parameter()}, AdamOptions(0.1));
    expect_error<NotImplementedError>(
        [&] { f.bag.fused_backward_step(f.ids, f.offsets, f.grad, adam); },
        "needs a sparse-aware optimizer");
    EXPECT_TRUE(adam.state(0).tensors.empty());
    EXPECT_EQ(adam.state(0).step, 0);
  }
  {  // a gradient already pending
    RowWiseAdagrad opt({&f.bag.parameter()}, RowWiseAdagradOptions(0.1));
    f.bag.backward(f.ids, f.offsets, f.grad);
    const Snapshot snap(f.bag.weight(), opt);
    expect_error<ValueError>([&] { f.bag.fused_backward_step(f.ids, f.offsets, f.grad, opt); },
                             "already holds a gradient");
    EXPECT_TRUE(snap.unchanged(f.bag.weight(), opt));
    f.bag.zero_grad();
  }
  {  // a module with dense gradients
    EmbeddingBag dense(EmbeddingBagOptions(10, 4).mode(EmbeddingBagMode::kSum));
    RowWiseAdagrad opt({&dense.parameter()}, RowWiseAdagradOptions(0.1));
    expect_error<ValueError>([&] { dense.fused_backward_step(f.ids, f.offsets, f.grad, opt); },
                             "sparse(true)");
  }
  {  // a table replaced by a float16 one: step() refuses its dtype
    EmbeddingBag bag(EmbeddingBagOptions(10, 4).mode(EmbeddingBagMode::kSum).sparse(true));
    RowWiseAdagrad opt({&bag.parameter()}, RowWiseAdagradOptions(0.1));
    bag.parameter().set_data(Tensor::zeros({10, 4}, DType::kFloat16));
    const Snapshot snap(bag.weight(), opt);
    expect_error<ValueError>(
        [&] {
          bag.fused_backward_step(f.ids, f.offsets, Tensor::zeros({2, 4}, DType::kFloat16), opt);
        },
        "dtype float16 is not supported");
    EXPECT_TRUE(snap.unchanged(bag.weight(), opt));
  }
}

// A frozen weight: no step, the optimizer untouched, the per-sample-weight gradient returned.
TEST(FusedStep, FrozenWeightOnlyReturnsThePerSampleWeightGradient) {
  Fixture f;
  f.bag.parameter().set_requires_grad(false);
  RowWiseAdagrad opt({&f.bag.parameter()}, RowWiseAdagradOptions(0.1));
  const Snapshot snap(f.bag.weight(), opt);
  const Tensor psw = Tensor::full({4}, 2.0, DType::kFloat32);
  const Tensor got = f.bag.fused_backward_step(f.ids, f.offsets, f.grad, opt, psw);
  const Tensor want = f.bag.backward(f.ids, f.offsets, f.grad, psw);
  EXPECT_TRUE(same_bytes(got, want));
  EXPECT_TRUE(snap.unchanged(f.bag.weight(), opt));
  const Tensor bad_id = Tensor::from_vector<std::int64_t>({1, 2, 3, 10}, {4});
  expect_error<IndexError>([&] { f.bag.fused_backward_step(bad_id, f.offsets, f.grad, opt); },
                           "10");
}

}  // namespace
