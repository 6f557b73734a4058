#include "emb/optim/sparse_adam.h"

#include <cmath>

#include "kernels/optim_rows.h"
#include "optim/ops.h"

namespace emb::optim {

namespace ops = emb::detail::optim;

namespace {

void check_betas(const std::tuple<double, double>& betas) {
  const auto [b1, b2] = betas;
  ops::check_hyper(0.0 <= b1 && b1 < 1.0, "beta parameter at index 0", b1);
  ops::check_hyper(0.0 <= b2 && b2 < 1.0, "beta parameter at index 1", b2);
}

}  // namespace

SparseAdam::SparseAdam(std::vector<Parameter*> params, const SparseAdamOptions& options)
    : Optimizer(std::move(params), "SparseAdam"), options_(options) {
  ops::check_hyper(options_.lr() > 0.0, "learning rate", options_.lr());
  ops::check_hyper(options_.eps() > 0.0, "epsilon value", options_.eps());
  check_betas(options_.betas());
}

void SparseAdam::set_lr(double lr) {
  ops::check_hyper(lr > 0.0, "learning rate", lr);
  options_.lr(lr);
}

void SparseAdam::check_grad(std::size_t i, const Parameter& param) const {
  if (!param.grad_is_sparse()) {
    throw NotImplementedError(ops::param_prefix("SparseAdam", i) +
                              "SparseAdam does not support dense gradients, please consider Adam "
                              "instead");
  }
  if (param.data().dim() != 2) {
    throw ValueError(ops::param_prefix("SparseAdam", i) +
                     "a sparse gradient needs a 2-D parameter");
  }
}

void SparseAdam::check_loaded_state(std::size_t i, const ParamState& state) const {
  require_state(i, state, {"exp_avg", "exp_avg_sq"});
  Optimizer::check_loaded_state(i, state);
}

void SparseAdam::update(std::size_t i, Parameter& param, ParamState& state) {
  const ops::GroupedGrad g = ops::group_rows(param.sparse_grad());
  update_rows(i, param, state, g.rows);
}

void SparseAdam::check_rows_update(std::size_t i) const {
  if (params_[i]->data().dim() != 2) {
    throw ValueError(ops::param_prefix("SparseAdam", i) +
                     "a sparse gradient needs a 2-D parameter");
  }
}

void SparseAdam::update_rows(std::size_t /*i*/, Parameter& param, ParamState& state,
                             const detail::SparseRows& g) {
  const Tensor& theta = param.data();
  if (state.tensors.empty()) {
    state.tensors["exp_avg"] = Tensor::zeros(theta.shape(), theta.dtype());
    state.tensors["exp_avg_sq"] = Tensor::zeros(theta.shape(), theta.dtype());
  }
  if (g.num_groups == 0) return;  // PyTorch skips an empty gradient (the step still counts)
  const double beta1 = std::get<0>(options_.betas());
  const double beta2 = std::get<1>(options_.betas());
  const double t = static_cast<double>(state.step);
  const double bias_correction1 = 1 - std::pow(beta1, t);
  const double bias_correction2 = 1 - std::pow(beta2, t);
  const double step_size = options_.lr() * std::sqrt(bias_correction2) / bias_correction1;
  detail::SparseRows rows = g;
  rows.maximize = options_.maximize();
  detail::fast::sparse_adam_rows(rows, {1 - beta1, 1 - beta2, options_.eps(), -step_size},
                                 theta.raw_data(), state.tensors.at("exp_avg").raw_data(),
                                 state.tensors.at("exp_avg_sq").raw_data());
}

}  // namespace emb::optim
