// EmbeddingBagCollection against its definition: every table as its own EmbeddingBag module
// (forward, sparse backward) and the emb optimizer of the same kind stepping that module alone.
// Bitwise, at 1, 2 and 3 threads (and with threads started for tiny work).
#include "emb/embedding_bag_collection.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "emb/emb.h"
#include "expect_error.h"
#include "runtime_internal.h"

namespace emb {
namespace {

using emb::testing::expect_error;

struct Spec {
  std::int64_t rows;
  std::int64_t dim;
  DType dtype;
  EmbeddingBagMode mode;
};

std::vector<EmbeddingBagConfig> make_configs(const std::vector<Spec>& specs, std::uint64_t seed) {
  Generator gen(seed);
  std::vector<EmbeddingBagConfig> out;
  for (std::size_t t = 0; t < specs.size(); ++t) {
    Tensor w = Tensor::empty({specs[t].rows, specs[t].dim}, DType::kFloat32);
    gen.normal_(w);
    out.push_back(EmbeddingBagConfig("t" + std::to_string(t), specs[t].rows, specs[t].dim)
                      .mode(specs[t].mode)
                      .dtype(specs[t].dtype)
                      .weight(w.to(specs[t].dtype)));
  }
  return out;
}

// A batch with duplicates, empty bags and both id widths; bag counts differ per table.
KeyedJaggedBatch make_batch(const std::vector<EmbeddingBagConfig>& configs, std::mt19937_64& rng,
                            std::int64_t bags) {
  KeyedJaggedBatch batch;
  for (std::size_t t = 0; t < configs.size(); ++t) {
    const std::int64_t b = bags + static_cast<std::int64_t>(t % 3);
    std::vector<std::int64_t> ids;
    std::vector<std::int64_t> offsets;
    for (std::int64_t k = 0; k < b; ++k) {
      offsets.push_back(static_cast<std::int64_t>(ids.size()));
      const std::int64_t len = static_cast<std::int64_t>(rng() % 6);  // 0..5, some empty
      for (std::int64_t i = 0; i < len; ++i) {
        // A small hot set makes duplicate rows within and across bags common.
        const std::int64_t rows = configs[t].num_embeddings();
        ids.push_back(static_cast<std::int64_t>(rng() % 2 ? rng() % std::min<std::int64_t>(rows, 4)
                                                           : rng() % rows));
      }
    }
    const auto n = static_cast<std::int64_t>(ids.size());
    Tensor id_t = Tensor::from_vector<std::int64_t>(ids, {n});
    if (t % 2 == 1) id_t = id_t.to(DType::kInt32);
    batch.add(configs[t].name(), id_t, Tensor::from_vector<std::int64_t>(offsets, {b}));
  }
  return batch;
}

std::vector<Tensor> make_grads(const std::vector<Tensor>& outs, Generator& gen) {
  std::vector<Tensor> grads;
  for (const Tensor& o : outs) {
    Tensor g = Tensor::empty(o.shape(), DType::kFloat32);
    gen.normal_(g);
    grads.push_back(g.to(o.dtype()));
  }
  return grads;
}

class Threads : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    set_num_threads(GetParam());
    detail::set_min_work_per_thread(1);  // threads even for the small cases here
  }
  void TearDown() override {
    detail::set_min_work_per_thread(std::int64_t{1} << 15);
    set_num_threads(1);
  }
};

TEST_P(Threads, ForwardEqualsEachTableAlone) {
  const std::vector<Spec> specs = {
      {50, 16, DType::kFloat32, EmbeddingBagMode::kSum},
      {7, 1, DType::kFloat32, EmbeddingBagMode::kMean},
      {30, 17, DType::kFloat64, EmbeddingBagMode::kMax},
      {20, 64, DType::kFloat16, EmbeddingBagMode::kSum},
      {40, 7, DType::kBFloat16, EmbeddingBagMode::kMean},
      {25, 129, DType::kFloat64, EmbeddingBagMode::kMean},
      {9, 3, DType::kFloat32, EmbeddingBagMode::kMax},
  };
  const std::vector<EmbeddingBagConfig> configs = make_configs(specs, 7);
  EmbeddingBagCollection ebc(configs, optim::SGDOptions(0.1));
  std::mt19937_64 rng(11);
  for (int round = 0; round < 3; ++round) {
    const KeyedJaggedBatch batch = make_batch(configs, rng, 5 + round * 20);
    const std::vector<Tensor> out = ebc.forward(batch);
    ASSERT_EQ(out.size(), configs.size());
    for (std::size_t t = 0; t < configs.size(); ++t) {
      EmbeddingBagFuncOptions o;
      o.mode(configs[t].mode());
      const Tensor want = embedding_bag(batch.ids[t], ebc.weight(t), batch.offsets[t], o);
      EXPECT_TRUE(out[t].equal(want)) << "table " << t << " round " << round;
    }
  }
}

// One collection and its twin: one EmbeddingBag module and one optimizer per table.
template <typename Opt, typename Options>
void check_training(const Options& options, DType dtype, int steps) {
  const std::vector<Spec> specs = {
      {60, 16, dtype, EmbeddingBagMode::kSum},
      {5, 3, dtype, EmbeddingBagMode::kMean},
      {40, 33, dtype, EmbeddingBagMode::kSum},
      {12, 8, dtype, EmbeddingBagMode::kMean},
  };
  const std::vector<EmbeddingBagConfig> configs = make_configs(specs, 3);
  // Each collection gets its own copies of the tables.
  std::vector<EmbeddingBagConfig> own = configs;
  std::vector<EmbeddingBagConfig> own2 = configs;
  for (auto& c : own) c.weight(c.weight().clone());
  for (auto& c : own2) c.weight(c.weight().clone());
  EmbeddingBagCollection ebc(own, options);    // backward_and_step
  EmbeddingBagCollection ebc2(own2, options);  // step(backward())
  std::vector<EmbeddingBag> modules;
  std::vector<std::unique_ptr<Opt>> opts;
  for (const auto& c : configs) {
    modules.emplace_back(EmbeddingBagOptions(c.num_embeddings(), c.embedding_dim())
                             .mode(c.mode())
                             .sparse(true)
                             ._weight(c.weight().clone()));
  }
  for (auto& m : modules) {
    opts.push_back(std::make_unique<Opt>(std::vector<Parameter*>{&m.parameter()}, options));
  }
  std::mt19937_64 rng(5);
  Generator gen(9);
  for (int s = 0; s < steps; ++s) {
    const KeyedJaggedBatch batch = make_batch(configs, rng, 6 + 10 * s);
    const std::vector<Tensor> out = ebc.forward(batch);
    const std::vector<Tensor> grads = make_grads(out, gen);
    const std::vector<SparseGrad> sparse = ebc2.backward(batch, grads);
    for (std::size_t t = 0; t < configs.size(); ++t) {
      ASSERT_TRUE(out[t].equal(modules[t](batch.ids[t], batch.offsets[t]))) << t;
      modules[t].backward(batch.ids[t], batch.offsets[t], grads[t]);
      const SparseGrad& g = modules[t].parameter().sparse_grad();
      ASSERT_TRUE(sparse[t].values().equal(g.values())) << t;
      ASSERT_TRUE(sparse[t].indices().equal(g.indices())) << t;
      opts[t]->step();
      opts[t]->zero_grad();
    }
    ebc.backward_and_step(batch, grads);
    ebc2.step(sparse);
    for (std::size_t t = 0; t < configs.size(); ++t) {
      EXPECT_TRUE(ebc.weight(t).equal(modules[t].weight())) << "table " << t << " step " << s;
      EXPECT_TRUE(ebc2.weight(t).equal(modules[t].weight())) << "table " << t << " step " << s;
      EXPECT_EQ(ebc.state(t).step, s + 1);
      // Every state tensor, as the optimizer names and holds it.
      EXPECT_EQ(ebc.state(t).tensors.size(), opts[t]->state(0).tensors.size()) << t;
      for (const auto& [key, value] : ebc.state(t).tensors) {
        EXPECT_TRUE(value.equal(opts[t]->state(0).tensors.at(key))) << t << " " << key;
      }
    }
  }
}

TEST_P(Threads, SgdStepsEqualEachTableAlone) {
  check_training<optim::SGD>(optim::SGDOptions(0.05), DType::kFloat32, 3);
  check_training<optim::SGD>(optim::SGDOptions(0.3).maximize(true), DType::kFloat64, 2);
}

TEST_P(Threads, AdagradStepsEqualEachTableAlone) {
  check_training<optim::Adagrad>(
      optim::AdagradOptions(0.1).lr_decay(0.01).initial_accumulator_value(0.5), DType::kFloat32,
      3);
  check_training<optim::Adagrad>(optim::AdagradOptions(0.2).maximize(true).eps(1e-3),
                                 DType::kFloat64, 2);
}

TEST_P(Threads, RowWiseAdagradStepsEqualEachTableAlone) {
  check_training<optim::RowWiseAdagrad>(optim::RowWiseAdagradOptions(0.1).weight_decay(0.01),
                                        DType::kFloat32, 3);
  check_training<optim::RowWiseAdagrad>(
      optim::RowWiseAdagradOptions(0.3).maximize(true).initial_accumulator_value(0.1),
      DType::kFloat64, 2);
}

TEST_P(Threads, LazyAdamStepsEqualEachTableAlone) {
  check_training<optim::LazyAdam>(optim::AdamOptions(0.01).amsgrad(true).weight_decay(0.01),
                                  DType::kFloat32, 3);
  check_training<optim::LazyAdam>(optim::AdamOptions(0.05).maximize(true), DType::kFloat64, 2);
  check_training<optim::LazyAdamW>(optim::AdamWOptions(0.02).betas({0.8, 0.99}),
                                   DType::kFloat32, 3);
}

INSTANTIATE_TEST_SUITE_P(EmbeddingBagCollection, Threads, ::testing::Values(1, 2, 3));

// Bad input anywhere: nothing written, the message names the table.
TEST(EmbeddingBagCollection, BadInputChangesNothing) {
  const std::vector<Spec> specs = {{10, 4, DType::kFloat32, EmbeddingBagMode::kSum},
                                   {6, 2, DType::kFloat32, EmbeddingBagMode::kMean}};
  const std::vector<EmbeddingBagConfig> configs = make_configs(specs, 1);
  EmbeddingBagCollection ebc(configs, optim::AdagradOptions(0.1));
  const Tensor w0 = ebc.weight(0).clone();
  const Tensor w1 = ebc.weight(1).clone();
  const Tensor s0 = ebc.state(0).tensors.at("sum").clone();
  auto ids = [](std::vector<std::int64_t> v) {
    const auto n = static_cast<std::int64_t>(v.size());
    return Tensor::from_vector<std::int64_t>(v, {n});
  };
  KeyedJaggedBatch good;
  good.add("t0", ids({1, 2, 3}), ids({0, 1})).add("t1", ids({0, 5}), ids({0}));
  const std::vector<Tensor> grads = {Tensor::full({2, 4}, 1.0, DType::kFloat32),
                                     Tensor::full({1, 2}, 1.0, DType::kFloat32)};
  auto unchanged = [&] {
    EXPECT_TRUE(ebc.weight(0).equal(w0));
    EXPECT_TRUE(ebc.weight(1).equal(w1));
    EXPECT_TRUE(ebc.state(0).tensors.at("sum").equal(s0));
    EXPECT_EQ(ebc.state(0).step, 0);
    EXPECT_EQ(ebc.state(1).step, 0);
  };
  // An id out of range in the second table: the first table is not updated either.
  KeyedJaggedBatch bad_id = good;
  bad_id.ids[1] = ids({0, 6});
  expect_error<IndexError>([&] { ebc.backward_and_step(bad_id, grads); },
                           {"table \"t1\"", "= 6", "6 rows"});
  expect_error<IndexError>([&] { ebc.forward(bad_id); }, {"table \"t1\"", "= 6"});
  unchanged();
  // Keys out of order, missing features, bad offsets.
  KeyedJaggedBatch swapped;
  swapped.add("t1", ids({0}), ids({0})).add("t0", ids({1}), ids({0}));
  expect_error<ValueError>([&] { ebc.forward(swapped); }, {"key \"t1\"", "expected \"t0\""});
  KeyedJaggedBatch one;
  one.add("t0", ids({1}), ids({0}));
  expect_error<ValueError>([&] { ebc.backward_and_step(one, grads); }, {"1 features", "2 tables"});
  KeyedJaggedBatch bad_offsets = good;
  bad_offsets.offsets[0] = ids({0, 4});
  expect_error<ValueError>([&] { ebc.backward_and_step(bad_offsets, grads); },
                           {"table \"t0\"", "offsets[1] = 4"});
  // A gradient of the wrong shape for the second table.
  const std::vector<Tensor> bad_grads = {grads[0], Tensor::full({2, 2}, 1.0, DType::kFloat32)};
  expect_error<ValueError>([&] { ebc.backward_and_step(good, bad_grads); },
                           {"grad_outputs[1]", "\"t1\"", "[1, 2]"});
  // step() with a gradient of another table.
  std::vector<SparseGrad> sparse = ebc.backward(good, grads);
  std::swap(sparse[0], sparse[1]);
  expect_error<ValueError>([&] { ebc.step(sparse); }, {"gradient 0", "table \"t0\""});
  unchanged();
  // And the good batch does train.
  ebc.backward_and_step(good, grads);
  EXPECT_FALSE(ebc.weight(0).equal(w0));
  EXPECT_EQ(ebc.state(1).step, 1);
}

TEST(EmbeddingBagCollection, RefusesWhatItCannotDo) {
  const std::vector<EmbeddingBagConfig> two = {EmbeddingBagConfig("a", 3, 2),
                                               EmbeddingBagConfig("a", 4, 2)};
  expect_error<ValueError>([&] { EmbeddingBagCollection(two, optim::SGDOptions(0.1)); },
                           {"\"a\" is used twice"});
  const std::vector<EmbeddingBagConfig> one = {EmbeddingBagConfig("a", 3, 2)};
  expect_error<ValueError>(
      [&] { EmbeddingBagCollection(one, optim::SGDOptions(0.1).momentum(0.9)); }, {"momentum"});
  expect_error<ValueError>([&] { EmbeddingBagCollection(one, optim::AdagradOptions(-1)); },
                           {"Invalid learning rate"});
  const std::vector<EmbeddingBagConfig> wrong = {
      EmbeddingBagConfig("a", 3, 2).weight(Tensor::zeros({3, 3}, DType::kFloat32))};
  expect_error<ValueError>([&] { EmbeddingBagCollection(wrong, optim::SGDOptions(0.1)); },
                           {"given weight", "[3, 2]"});
  // Mode max pools but has no sparse gradient; half tables pool but do not train.
  EmbeddingBagCollection maxed({EmbeddingBagConfig("m", 3, 2).mode(EmbeddingBagMode::kMax)},
                               optim::SGDOptions(0.1));
  KeyedJaggedBatch b;
  b.add("m", Tensor::from_vector<std::int64_t>({0, 2}, {2}),
        Tensor::from_vector<std::int64_t>({0}, {1}));
  const std::vector<Tensor> g = {Tensor::zeros({1, 2}, DType::kFloat32)};
  EXPECT_EQ(maxed.forward(b)[0].shape(), (Shape{1, 2}));
  expect_error<NotImplementedError>([&] { maxed.backward_and_step(b, g); }, {"mode max"});
  EmbeddingBagCollection half({EmbeddingBagConfig("h", 3, 2).dtype(DType::kFloat16)},
                              optim::SGDOptions(0.1));
  b.keys[0] = "h";
  const std::vector<Tensor> gh = {Tensor::zeros({1, 2}, DType::kFloat16)};
  expect_error<ValueError>([&] { half.backward_and_step(b, gh); }, {"float16"});
}

}  // namespace
}  // namespace emb
