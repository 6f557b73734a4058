// The optimizers the fuzz targets build, by number: every optimizer, with options that give
// each kind of state (SGD with and without a momentum buffer, Adam with max_exp_avg_sq, ...).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "emb/emb.h"

namespace emb::fuzz {

inline constexpr int kOptimizerKinds = 10;

inline std::unique_ptr<optim::Optimizer> make_optimizer(int kind, std::vector<Parameter*> ps) {
  using namespace emb::optim;
  switch (kind % kOptimizerKinds) {
    case 0:
      return std::make_unique<SGD>(ps, SGDOptions(0.1));
    case 1:
      return std::make_unique<SGD>(ps, SGDOptions(0.1).momentum(0.9).nesterov(true));
    case 2:
      return std::make_unique<SGD>(ps, SGDOptions(0.1).momentum(0.5).dampening(0.25));
    case 3:
      return std::make_unique<Adagrad>(ps, AdagradOptions(0.1).lr_decay(0.01));
    case 4:
      return std::make_unique<Adam>(ps, AdamOptions(0.01).amsgrad(true));
    case 5:
      return std::make_unique<AdamW>(ps, AdamWOptions(0.01));
    case 6:
      return std::make_unique<SparseAdam>(ps, SparseAdamOptions(0.01));
    case 7:
      return std::make_unique<LazyAdam>(ps, AdamOptions(0.01));
    case 8:
      return std::make_unique<LazyAdamW>(ps, AdamWOptions(0.01).amsgrad(true));
    default:
      return std::make_unique<RowWiseAdagrad>(ps, RowWiseAdagradOptions(0.1));
  }
}

// A [6, 3] table and a [3] bias with fixed values, of the given dtype.
inline Parameter fuzz_table(DType dtype) {
  Tensor t = Tensor::empty({6, 3}, dtype);
  for (std::int64_t k = 0; k < t.numel(); ++k)
    t.set_double(k, 0.25 * static_cast<double>(k % 7) - 0.5);
  return Parameter(t);
}
inline Parameter fuzz_bias(DType dtype) {
  return Parameter(Tensor::full({3}, 0.5, dtype));
}

// Step s's gradients: the table's sparse (or dense), the bias's dense.
inline void fuzz_grads(Parameter& table, Parameter& bias, int s, bool sparse) {
  table.zero_grad();
  bias.zero_grad();
  const DType dt = table.data().dtype();
  const std::vector<std::int64_t> ids = {s % 6, 2, (s + 3) % 6, 2};
  Tensor values = Tensor::empty({4, 3}, dt);
  for (std::int64_t k = 0; k < 12; ++k)
    values.set_double(k, 0.125 * static_cast<double>((k + s) % 5) - 0.25);
  const SparseGrad g(Tensor::from_vector<std::int64_t>(ids, {4}), values, 6);
  if (sparse)
    table.accumulate_grad(g);
  else
    table.accumulate_grad(g.to_dense());
  bias.accumulate_grad(Tensor::full({3}, 0.1 * (s + 1), dt));
}

}  // namespace emb::fuzz
