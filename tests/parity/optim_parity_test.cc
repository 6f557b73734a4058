// Optimizers against PyTorch 1.13 on identical gradients: SGD, Adagrad, Adam, AdamW against
// libtorch's torch::optim (bitwise in float64 and float32), SparseAdam against Debian's
// Python PyTorch (libtorch has none) through optim_sparse_adam_oracle.py.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "emb/optim.h"

namespace {

constexpr std::int64_t kRows = 11;
constexpr std::int64_t kDim = 19;  // 209 elements: ATen's vector loop and its scalar tail
constexpr std::int64_t kBias = 5;  // a second, 1-D dense parameter
constexpr int kSteps = 25;

enum class Grads {
  kSparse,         // both get the same row-sparse gradient (torch: uncoalesced sparse COO)
  kDense,          // both get it made dense (plus a dense gradient for the 1-D parameter)
  kSparseVsDense,  // emb gets it sparse, torch dense
  // 17 to 40 entries, more than 16 duplicates of an id in every other step: ATen's coalesce()
  // sums duplicates in the order of its unstable sort, emb in the order it is given.
  kSparseAtenOrder,   // emb gets the entries in ATen's order: bitwise
  kSparseInputOrder,  // both get input order: within the bound of the summation order
};

// kOrderBound: |ours - torch| <= steps * lr * 4 * 40 * eps per element: each step's coalesced rows
// differ by at most 40 eps of their magnitude, and Adagrad's and SparseAdam's update of one element
// is at most lr in magnitude and moves by at most that relative change, times a safety factor 4.
enum class Compare { kExact, kRelative, kOrderBound };

using OurFactory =
    std::function<std::unique_ptr<emb::optim::Optimizer>(std::vector<emb::Parameter*>)>;
using TorchFactory =
    std::function<std::unique_ptr<torch::optim::Optimizer>(std::vector<torch::Tensor>)>;

struct Case {
  std::string name;
  OurFactory ours;
  TorchFactory theirs;
  bool negate_for_torch = false;  // maximize: libtorch 1.13 has no option, feed it -g instead
};

template <typename T>
torch::Dtype torch_dtype() {
  if constexpr (std::is_same_v<T, std::int64_t>) return torch::kInt64;
  return std::is_same_v<T, double> ? torch::kFloat64 : torch::kFloat32;
}

template <typename T>
torch::Tensor to_torch(const emb::Tensor& t) {
  std::vector<std::int64_t> sizes(t.shape().begin(), t.shape().end());
  return torch::from_blob(t.raw_data(), sizes, torch_dtype<T>()).clone();
}

// Distance in units in the last place between two finite floats of the same type.
template <typename T>
std::int64_t ulp_distance(T a, T b) {
  using I = std::conditional_t<sizeof(T) == 8, std::int64_t, std::int32_t>;
  I ia, ib;
  std::memcpy(&ia, &a, sizeof(T));
  std::memcpy(&ib, &b, sizeof(T));
  if (ia < 0) ia = std::numeric_limits<I>::min() - ia;
  if (ib < 0) ib = std::numeric_limits<I>::min() - ib;
  return std::llabs(static_cast<std::int64_t>(ia) - static_cast<std::int64_t>(ib));
}

struct Gradient {
  emb::SparseGrad sparse;
  emb::Tensor bias;  // dense gradient of the 1-D parameter
};

// Gradients of 3 to 9 entries (duplicates likely; never more than 16 entries, so ATen's sort
// keeps input order), or with many_duplicates 17 to 40 entries, every other step over 3 rows
// only (more than 16 duplicates of an id).
template <typename T>
Gradient make_gradient(std::mt19937_64& rng, int step, bool many_duplicates = false) {
  std::uniform_int_distribution<std::int64_t> row(0, many_duplicates && step % 2 ? 2 : kRows - 1);
  std::normal_distribution<double> normal(0.0, 1.0);
  const std::int64_t nnz = many_duplicates ? 17 + step % 24 : 3 + step % 7;
  std::vector<std::int64_t> ids(static_cast<std::size_t>(nnz));
  for (auto& id : ids) id = row(rng);
  std::vector<T> values(static_cast<std::size_t>(nnz * kDim));
  for (auto& v : values) v = static_cast<T>(normal(rng) * (step % 3 == 0 ? 0.01 : 1.0));
  std::vector<T> bias(kBias);
  for (auto& v : bias) v = static_cast<T>(normal(rng));
  return {emb::SparseGrad(emb::Tensor::from_vector<std::int64_t>(ids, {nnz}),
                          emb::Tensor::from_vector<T>(values, {nnz, kDim}), kRows),
          emb::Tensor::from_vector<T>(bias, {kBias})};
}

// The gradient with its entries in the order of ATen's (unstable) sort of its ids: the order in
// which PyTorch's coalesce() sums duplicates. emb sums in the order it is given.
emb::SparseGrad in_aten_order(const emb::SparseGrad& g) {
  const torch::Tensor ids = to_torch<std::int64_t>(g.indices());
  const torch::Tensor perm = std::get<1>(ids.sort());
  std::vector<std::int64_t> sorted_ids(static_cast<std::size_t>(g.nnz()));
  std::vector<std::int64_t> order(static_cast<std::size_t>(g.nnz()));
  for (std::int64_t j = 0; j < g.nnz(); ++j) {
    order[j] = perm[j].item<std::int64_t>();
    sorted_ids[j] = g.indices().data<std::int64_t>()[order[j]];
  }
  emb::Tensor values = emb::Tensor::empty({g.nnz(), g.dim()}, g.dtype());
  const std::size_t row_bytes = static_cast<std::size_t>(g.dim()) * emb::element_size(g.dtype());
  for (std::int64_t j = 0; j < g.nnz(); ++j) {
    std::memcpy(static_cast<std::byte*>(values.raw_data()) + j * row_bytes,
                static_cast<const std::byte*>(g.values().raw_data()) + order[j] * row_bytes,
                row_bytes);
  }
  return emb::SparseGrad(emb::Tensor::from_vector<std::int64_t>(sorted_ids, {g.nnz()}), values,
                         g.num_rows());
}

template <typename T>
void expect_same(const emb::Tensor& ours, const torch::Tensor& theirs, Compare how,
                 const std::string& where, std::int64_t* max_ulp, double bound = 0) {
  const torch::Tensor t = theirs.contiguous();
  ASSERT_EQ(ours.numel(), t.numel()) << where;
  const T* a = ours.data<T>();
  const T* b = t.data_ptr<T>();
  for (std::int64_t k = 0; k < ours.numel(); ++k) {
    if (how == Compare::kRelative) {
      ASSERT_NEAR(a[k], b[k], 1e-12 * (1 + std::abs(b[k]))) << where << " element " << k;
      continue;
    }
    if (how == Compare::kOrderBound) {
      *max_ulp = std::max(*max_ulp, ulp_distance<T>(a[k], b[k]));
      ASSERT_NEAR(a[k], b[k], bound) << where << " element " << k;
      continue;
    }
    const std::int64_t ulp = ulp_distance<T>(a[k], b[k]);
    *max_ulp = std::max(*max_ulp, ulp);
    ASSERT_EQ(ulp, 0) << where << " element " << k << ": " << a[k] << " vs " << b[k];
  }
}

// Runs kSteps steps of both optimizers on identical gradients, comparing after every step.
template <typename T>
void run(const Case& c, Grads grads, Compare how = Compare::kExact) {
  SCOPED_TRACE(c.name + (std::is_same_v<T, double> ? " float64" : " float32") +
               (grads == Grads::kSparse  ? " sparse"
                : grads == Grads::kDense ? " dense"
                                         : " sparse-vs-dense"));
  std::mt19937_64 rng(1234);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<T> w0(kRows * kDim), b0(kBias);
  for (auto& v : w0) v = static_cast<T>(normal(rng));
  for (auto& v : b0) v = static_cast<T>(normal(rng));
  emb::Parameter table(emb::Tensor::from_vector<T>(w0, {kRows, kDim}));
  emb::Parameter bias(emb::Tensor::from_vector<T>(b0, {kBias}));
  const bool with_bias = grads == Grads::kDense;
  std::vector<emb::Parameter*> ours_params{&table};
  if (with_bias) ours_params.push_back(&bias);
  auto ours = c.ours(ours_params);

  torch::Tensor tw = to_torch<T>(table.data()).requires_grad_(true);
  torch::Tensor tb = to_torch<T>(bias.data()).requires_grad_(true);
  std::vector<torch::Tensor> torch_params{tw};
  if (with_bias) torch_params.push_back(tb);
  auto theirs = c.theirs(torch_params);

  std::int64_t max_ulp = 0;
  const bool many = grads == Grads::kSparseAtenOrder || grads == Grads::kSparseInputOrder;
  const double bound =
      kSteps * ours->lr() * 4 * 40 * static_cast<double>(std::numeric_limits<T>::epsilon());
  int steps_differing = 0;
  for (int s = 0; s < kSteps; ++s) {
    if (s == 9) {  // a schedule: the learning rate changes between steps
      ours->set_lr(ours->lr() * 0.5);
      for (auto& group : theirs->param_groups())
        group.options().set_lr(group.options().get_lr() * 0.5);
    }
    Gradient g = make_gradient<T>(rng, s, many);
    ours->zero_grad();
    theirs->zero_grad();
    const double sign = c.negate_for_torch ? -1.0 : 1.0;
    if (grads == Grads::kSparse || many) {
      table.accumulate_grad(grads == Grads::kSparseAtenOrder ? in_aten_order(g.sparse) : g.sparse);
      torch::Tensor ids = to_torch<std::int64_t>(g.sparse.indices()).view({1, -1});
      tw.mutable_grad() =
          torch::sparse_coo_tensor(ids, to_torch<T>(g.sparse.values()) * sign, {kRows, kDim});
    } else {
      if (grads == Grads::kSparseVsDense) {
        table.accumulate_grad(g.sparse);
      } else {
        table.accumulate_grad(g.sparse.to_dense());
        bias.accumulate_grad(g.bias);
        tb.mutable_grad() = to_torch<T>(g.bias) * sign;
      }
      tw.mutable_grad() = to_torch<T>(g.sparse.to_dense()) * sign;
    }
    ours->step();
    theirs->step();
    const std::string where = "step " + std::to_string(s + 1);
    if (many) {
      const torch::Tensor tc = tw.detach().contiguous();
      steps_differing +=
          std::memcmp(table.data().raw_data(), tc.data_ptr(), table.data().nbytes()) != 0;
    }
    expect_same<T>(table.data(), tw.detach(), how, where + " table", &max_ulp, bound);
    if (with_bias) expect_same<T>(bias.data(), tb.detach(), how, where + " bias", &max_ulp);
    if (::testing::Test::HasFatalFailure()) return;
  }
  if (how != Compare::kRelative) {
    std::printf(
        "  %-40s %-7s %-15s %d steps, max %lld ulp%s\n", c.name.c_str(),
        std::is_same_v<T, double> ? "float64" : "float32",
        grads == Grads::kSparse             ? "sparse"
        : grads == Grads::kDense            ? "dense"
        : grads == Grads::kSparseAtenOrder  ? "sparse >16 dup, ATen order"
        : grads == Grads::kSparseInputOrder ? "sparse >16 dup, input order"
                                            : "sparse-vs-dense",
        kSteps, static_cast<long long>(max_ulp),
        many ? (", " + std::to_string(steps_differing) + " steps not bitwise").c_str() : "");
  }
}

void run_both_dtypes(const Case& c, Grads grads, Compare how = Compare::kExact) {
  run<double>(c, grads, how);
  run<float>(c, grads, how);
}

// ---------------------------------------------------------------------------------------------
// SGD

Case sgd_case(const std::string& name, const emb::optim::SGDOptions& o) {
  return {name,
          [o](std::vector<emb::Parameter*> p) { return std::make_unique<emb::optim::SGD>(p, o); },
          [o](std::vector<torch::Tensor> p) {
            return std::make_unique<torch::optim::SGD>(p, torch::optim::SGDOptions(o.lr())
                                                              .momentum(o.momentum())
                                                              .dampening(o.dampening())
                                                              .nesterov(o.nesterov())
                                                              .weight_decay(o.weight_decay()));
          },
          o.maximize()};
}

using emb::optim::SGDOptions;

TEST(OptimParity, SGDPlain) {
  const Case c = sgd_case("SGD(lr=0.1)", SGDOptions(0.1));
  run_both_dtypes(c, Grads::kSparse);
  run_both_dtypes(c, Grads::kDense);
}

TEST(OptimParity, SGDMaximize) {
  const Case c = sgd_case("SGD(lr=0.1, maximize)", SGDOptions(0.1).maximize(true));
  run_both_dtypes(c, Grads::kSparse);
  run_both_dtypes(c, Grads::kDense);
}

TEST(OptimParity, SGDWeightDecayDense) {
  run_both_dtypes(sgd_case("SGD(lr=0.1, wd=0.05)", SGDOptions(0.1).weight_decay(0.05)),
                  Grads::kDense);
  run_both_dtypes(sgd_case("SGD(lr=0.1, momentum=0.9, wd=0.05, nesterov)",
                           SGDOptions(0.1).momentum(0.9).weight_decay(0.05).nesterov(true)),
                  Grads::kDense);
}

TEST(OptimParity, SGDMomentum) {
  for (const Case& c : {sgd_case("SGD(lr=0.1, momentum=0.9)", SGDOptions(0.1).momentum(0.9)),
                        sgd_case("SGD(lr=0.05, momentum=0.8, dampening=0.3)",
                                 SGDOptions(0.05).momentum(0.8).dampening(0.3)),
                        sgd_case("SGD(lr=0.1, momentum=0.9, nesterov)",
                                 SGDOptions(0.1).momentum(0.9).nesterov(true)),
                        sgd_case("SGD(lr=0.1, momentum=0.7, nesterov, maximize)",
                                 SGDOptions(0.1).momentum(0.7).nesterov(true).maximize(true))}) {
    run_both_dtypes(c, Grads::kDense);
    // emb keeps a row-sparse momentum buffer coalesced: bitwise PyTorch's run on the same
    // gradients made dense ...
    run_both_dtypes(c, Grads::kSparseVsDense);
    // ... and, to rounding, PyTorch's sparse run (whose buffer is an ever-growing uncoalesced
    // list).
    run<double>(c, Grads::kSparse, Compare::kRelative);
  }
}

// ---------------------------------------------------------------------------------------------
// Adagrad

Case adagrad_case(const std::string& name, const emb::optim::AdagradOptions& o) {
  return {
      name,
      [o](std::vector<emb::Parameter*> p) { return std::make_unique<emb::optim::Adagrad>(p, o); },
      [o](std::vector<torch::Tensor> p) {
        return std::make_unique<torch::optim::Adagrad>(
            p, torch::optim::AdagradOptions(o.lr())
                   .lr_decay(o.lr_decay())
                   .weight_decay(o.weight_decay())
                   .initial_accumulator_value(o.initial_accumulator_value())
                   .eps(o.eps()));
      },
      o.maximize()};
}

using emb::optim::AdagradOptions;

TEST(OptimParity, Adagrad) {
  for (const Case& c :
       {adagrad_case("Adagrad(lr=0.1)", AdagradOptions(0.1)),
        adagrad_case("Adagrad(lr=0.1, lr_decay=0.01, init=0.1, eps=1e-6)",
                     AdagradOptions(0.1).lr_decay(0.01).initial_accumulator_value(0.1).eps(1e-6)),
        adagrad_case("Adagrad(lr=0.1, maximize)", AdagradOptions(0.1).maximize(true))}) {
    run_both_dtypes(c, Grads::kSparse);
    run_both_dtypes(c, Grads::kDense);
  }
  run_both_dtypes(adagrad_case("Adagrad(lr=0.1, wd=0.1)", AdagradOptions(0.1).weight_decay(0.1)),
                  Grads::kDense);
}

// More than 16 entries and more than 16 duplicates of an id: PyTorch's coalesce() sums the
// duplicates in the order of its unstable sort, emb in input order. Given ATen's order emb is
// bitwise; in input order it stays within the bound of the summation order.
TEST(OptimParity, AdagradSparseManyDuplicates) {
  for (const Case& c :
       {adagrad_case("Adagrad(lr=0.1)", AdagradOptions(0.1)),
        adagrad_case(
            "Adagrad(lr=0.1, lr_decay=0.01, init=0.1, eps=1e-6)",
            AdagradOptions(0.1).lr_decay(0.01).initial_accumulator_value(0.1).eps(1e-6))}) {
    run_both_dtypes(c, Grads::kSparseAtenOrder);
    run_both_dtypes(c, Grads::kSparseInputOrder, Compare::kOrderBound);
  }
}

// libtorch's Adagrad refuses an empty sparse gradient; emb (like SparseAdam in 2.x) skips the
// update, and the step still counts (for lr_decay).
TEST(OptimParity, AdagradEmptySparseGradient) {
  emb::Parameter p(emb::Tensor::full({kRows, kDim}, 1.0, emb::DType::kFloat64));
  p.accumulate_grad(emb::SparseGrad(kRows, kDim, emb::DType::kFloat64));
  emb::optim::Adagrad ours({&p}, AdagradOptions(0.1));
  ours.step();
  for (std::int64_t k = 0; k < kRows * kDim; ++k) EXPECT_EQ(p.data().data<double>()[k], 1.0);
  torch::Tensor t = torch::ones({kRows, kDim}, torch::kFloat64).requires_grad_(true);
  t.mutable_grad() = torch::sparse_coo_tensor(
      torch::empty({1, 0}, torch::kLong), torch::empty({0, kDim}, torch::kFloat64), {kRows, kDim});
  torch::optim::Adagrad theirs({t}, torch::optim::AdagradOptions(0.1));
  EXPECT_THROW(theirs.step(), c10::Error);
}

// ---------------------------------------------------------------------------------------------
// Adam, AdamW (dense); LazyAdam/LazyAdamW with dense gradients are Adam/AdamW.

template <typename Ours, typename OurOptions>
Case adam_case(const std::string& name, const OurOptions& o, bool decoupled) {
  return {name, [o](std::vector<emb::Parameter*> p) { return std::make_unique<Ours>(p, o); },
          [o, decoupled](std::vector<torch::Tensor> p) -> std::unique_ptr<torch::optim::Optimizer> {
            if (decoupled) {
              return std::make_unique<torch::optim::AdamW>(p, torch::optim::AdamWOptions(o.lr())
                                                                  .betas(o.betas())
                                                                  .eps(o.eps())
                                                                  .weight_decay(o.weight_decay())
                                                                  .amsgrad(o.amsgrad()));
            }
            return std::make_unique<torch::optim::Adam>(p, torch::optim::AdamOptions(o.lr())
                                                               .betas(o.betas())
                                                               .eps(o.eps())
                                                               .weight_decay(o.weight_decay())
                                                               .amsgrad(o.amsgrad()));
          },
          o.maximize()};
}

using emb::optim::AdamOptions;
using emb::optim::AdamWOptions;

TEST(OptimParity, Adam) {
  for (const Case& c :
       {adam_case<emb::optim::Adam>("Adam(lr=0.01)", AdamOptions(0.01), false),
        adam_case<emb::optim::Adam>("Adam(lr=0.01, amsgrad)", AdamOptions(0.01).amsgrad(true),
                                    false),
        adam_case<emb::optim::Adam>(
            "Adam(lr=0.01, wd=0.1, betas=(0.8,0.99), eps=1e-6)",
            AdamOptions(0.01).weight_decay(0.1).betas({0.8, 0.99}).eps(1e-6), false),
        adam_case<emb::optim::Adam>(
            "Adam(lr=0.01, amsgrad, wd=0.1, maximize)",
            AdamOptions(0.01).amsgrad(true).weight_decay(0.1).maximize(true), false),
        adam_case<emb::optim::LazyAdam>("LazyAdam(lr=0.01, amsgrad), dense grads",
                                        AdamOptions(0.01).amsgrad(true), false)}) {
    run_both_dtypes(c, Grads::kDense);
  }
}

TEST(OptimParity, AdamW) {
  for (const Case& c :
       {adam_case<emb::optim::AdamW>("AdamW(lr=0.01)", AdamWOptions(0.01), true),
        adam_case<emb::optim::AdamW>("AdamW(lr=0.01, amsgrad, wd=0.1)",
                                     AdamWOptions(0.01).amsgrad(true).weight_decay(0.1), true),
        adam_case<emb::optim::AdamW>("AdamW(lr=0.01, betas=(0.5,0.9), maximize)",
                                     AdamWOptions(0.01).betas({0.5, 0.9}).maximize(true), true),
        adam_case<emb::optim::LazyAdamW>("LazyAdamW(lr=0.01, wd=0.1), dense grads",
                                         AdamWOptions(0.01).weight_decay(0.1), true)}) {
    run_both_dtypes(c, Grads::kDense);
  }
}

TEST(OptimParity, SparseRejectedLikeLibtorch) {
  emb::Parameter p(emb::Tensor::zeros({kRows, kDim}, emb::DType::kFloat64));
  std::mt19937_64 rng(7);
  p.accumulate_grad(make_gradient<double>(rng, 1).sparse);
  emb::optim::Adam adam({&p});
  EXPECT_THROW(adam.step(), emb::NotImplementedError);
  torch::Tensor t = torch::zeros({kRows, kDim}, torch::kFloat64).requires_grad_(true);
  t.mutable_grad() = to_torch<double>(p.sparse_grad().to_dense()).to_sparse();
  torch::optim::Adam theirs({t});
  EXPECT_THROW(theirs.step(), c10::Error);
}

// ---------------------------------------------------------------------------------------------
// SparseAdam against Python PyTorch: the inputs go to a text file, the oracle script runs
// torch.optim.SparseAdam on them and writes the parameter after every step.

std::string hex(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%a", v);
  return buf;
}

struct SparseAdamRun {
  bool f64;
  double lr, beta1, beta2, eps;
  bool maximize;
  Grads grads = Grads::kSparse;  // or kSparseAtenOrder / kSparseInputOrder
};

// One SparseAdam run: emb runs it now and writes torch's inputs to in_path; check() compares
// with what the oracle wrote to out_path.
struct OracleRun {
  std::filesystem::path in_path, out_path;
  std::function<void()> check;
};

template <typename T>
OracleRun sparse_adam_run(const SparseAdamRun& cfg, const std::string& tag,
                          const std::filesystem::path& dir, int index) {
  OracleRun run{dir / ("in" + std::to_string(index) + ".txt"),
                dir / ("out" + std::to_string(index) + ".txt"),
                {}};
  std::mt19937_64 rng(99);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<T> w0(kRows * kDim);
  for (auto& v : w0) v = static_cast<T>(normal(rng));
  emb::Parameter table(emb::Tensor::from_vector<T>(w0, {kRows, kDim}));
  emb::optim::SparseAdam opt({&table}, emb::optim::SparseAdamOptions(cfg.lr)
                                           .betas({cfg.beta1, cfg.beta2})
                                           .eps(cfg.eps)
                                           .maximize(cfg.maximize));
  std::ofstream in(run.in_path);
  in << (cfg.f64 ? "float64" : "float32") << ' ' << kRows << ' ' << kDim << ' ' << kSteps << ' '
     << hex(cfg.lr) << ' ' << hex(cfg.beta1) << ' ' << hex(cfg.beta2) << ' ' << hex(cfg.eps) << ' '
     << (cfg.maximize ? 1 : 0) << '\n';
  for (T v : w0) in << hex(v) << ' ';
  in << '\n';
  auto ours_after = std::make_shared<std::vector<std::vector<T>>>();
  for (int s = 0; s < kSteps; ++s) {
    Gradient g = make_gradient<T>(rng, s, cfg.grads != Grads::kSparse);
    if (s == 4) g.sparse = emb::SparseGrad(kRows, kDim, emb::dtype_of<T>);  // an empty gradient
    in << g.sparse.nnz() << '\n';
    for (std::int64_t j = 0; j < g.sparse.nnz(); ++j)
      in << g.sparse.indices().data<std::int64_t>()[j] << ' ';
    in << '\n';
    const T* v = g.sparse.values().template data<T>();
    for (std::int64_t k = 0; k < g.sparse.values().numel(); ++k) in << hex(v[k]) << ' ';
    in << '\n';
    opt.zero_grad();
    table.accumulate_grad(cfg.grads == Grads::kSparseAtenOrder && g.sparse.nnz() > 0
                              ? in_aten_order(g.sparse)
                              : g.sparse);
    opt.step();
    const T* w = table.data().template data<T>();
    ours_after->emplace_back(w, w + kRows * kDim);
  }
  run.check = [cfg, tag, out_path = run.out_path, ours_after] {
    SCOPED_TRACE("SparseAdam " + tag);
    std::ifstream out(out_path);
    std::int64_t max_ulp = 0;
    int steps_differing = 0;
    const double bound =
        kSteps * cfg.lr * 4 * 40 * static_cast<double>(std::numeric_limits<T>::epsilon());
    for (int s = 0; s < kSteps; ++s) {
      bool differs = false;
      for (std::int64_t k = 0; k < kRows * kDim; ++k) {
        std::string word;
        ASSERT_TRUE(out >> word) << "oracle output ends at step " << s + 1;
        const T theirs = static_cast<T>(std::strtod(word.c_str(), nullptr));
        const T ours = (*ours_after)[static_cast<std::size_t>(s)][static_cast<std::size_t>(k)];
        const std::int64_t ulp = ulp_distance<T>(ours, theirs);
        max_ulp = std::max(max_ulp, ulp);
        differs = differs || ulp != 0;
        if (cfg.grads == Grads::kSparseInputOrder) {  // see Compare::kOrderBound
          ASSERT_NEAR(ours, theirs, bound) << "step " << s + 1 << " element " << k;
        } else {
          ASSERT_EQ(ulp, 0) << "step " << s + 1 << " element " << k << ": " << ours << " vs "
                            << theirs;
        }
      }
      steps_differing += differs;
    }
    std::printf("  %-40s %-7s %-15s %d steps, max %lld ulp, %d steps not bitwise\n",
                ("SparseAdam " + tag).c_str(), std::is_same_v<T, double> ? "float64" : "float32",
                cfg.grads == Grads::kSparse            ? "sparse"
                : cfg.grads == Grads::kSparseAtenOrder ? "sparse >16 dup, ATen order"
                                                       : "sparse >16 dup, input order",
                kSteps, static_cast<long long>(max_ulp), steps_differing);
  };
  return run;
}

// All runs go to one oracle process (importing torch takes seconds).
TEST(OptimParity, SparseAdamAgainstPython) {
  const char* python_env = std::getenv("EMB_TORCH_PYTHON");
  const std::string python = python_env ? python_env : "/usr/bin/python3";  // Debian's, with torch
  const auto dir =
      std::filesystem::temp_directory_path() / ("emb_sparse_adam_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::vector<OracleRun> runs;
  runs.push_back(sparse_adam_run<double>({true, 0.01, 0.9, 0.999, 1e-8, false}, "lr=0.01", dir, 0));
  runs.push_back(sparse_adam_run<double>({true, 0.05, 0.8, 0.95, 1e-6, true},
                                         "lr=0.05,betas=(0.8,0.95),eps=1e-6,maximize", dir, 1));
  runs.push_back(sparse_adam_run<float>({false, 0.01, 0.9, 0.999, 1e-8, false}, "lr=0.01", dir, 2));
  // More than 16 entries and duplicates: bitwise in ATen's order, bounded in input order.
  for (Grads grads : {Grads::kSparseAtenOrder, Grads::kSparseInputOrder}) {
    const std::string tag = grads == Grads::kSparseAtenOrder ? "aten-order" : "input-order";
    runs.push_back(sparse_adam_run<double>({true, 0.01, 0.9, 0.999, 1e-8, false, grads},
                                           "lr=0.01," + tag, dir, static_cast<int>(runs.size())));
    runs.push_back(sparse_adam_run<float>({false, 0.01, 0.9, 0.999, 1e-8, false, grads},
                                          "lr=0.01," + tag, dir, static_cast<int>(runs.size())));
  }
  std::string cmd = python + " " + EMB_OPTIM_ORACLE_SCRIPT;
  for (const OracleRun& r : runs) cmd += " " + r.in_path.string() + " " + r.out_path.string();
  const int rc = std::system(cmd.c_str());
  // 77: the interpreter cannot import torch. The setup script installs python3-torch, so that is
  // a broken environment, not a reason to skip the comparison.
  ASSERT_EQ(rc, 0) << cmd
                   << (WIFEXITED(rc) && WEXITSTATUS(rc) == 77
                           ? ": " + python + " cannot import torch (apt-get install python3-torch)"
                           : std::string());
  for (const OracleRun& r : runs) r.check();
  std::filesystem::remove_all(dir);
}

}  // namespace
