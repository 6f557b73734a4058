#include "emb/optim/adam.h"

#include <cmath>

#include "emb/optim/lazy_adam.h"
#include "kernels/optim_rows.h"
#include "optim/ops.h"

namespace emb::optim {

namespace ops = emb::detail::optim;
using detail_adam::Config;

namespace {

template <typename Options>
Config make_config(const Options& o, bool decoupled, bool lazy) {
  const auto [b1, b2] = o.betas();
  ops::check_hyper(o.lr() >= 0.0, "learning rate", o.lr());
  ops::check_hyper(o.eps() >= 0.0, "epsilon value", o.eps());
  ops::check_hyper(0.0 <= b1 && b1 < 1.0, "beta parameter at index 0", b1);
  ops::check_hyper(0.0 <= b2 && b2 < 1.0, "beta parameter at index 1", b2);
  ops::check_hyper(o.weight_decay() >= 0.0, "weight_decay value", o.weight_decay());
  return Config{o.lr(),      b1,           b2,        o.eps(), o.weight_decay(),
                o.amsgrad(), o.maximize(), decoupled, lazy};
}

}  // namespace

AdamBase::AdamBase(std::vector<Parameter*> params, const Config& config, const char* what)
    : Optimizer(std::move(params), what), config_(config) {}

void AdamBase::set_lr(double lr) {
  ops::check_hyper(lr >= 0.0, "learning rate", lr);
  config_.lr = lr;
  store_lr(lr);
}

void AdamBase::check_grad(std::size_t i, const Parameter& param) const {
  if (!param.grad_is_sparse() || config_.lazy) return;
  throw NotImplementedError(
      ops::param_prefix(name(), i) +
      (config_.decoupled
           ? "AdamW does not support sparse gradients, please consider LazyAdamW instead"
           : "Adam does not support sparse gradients, please consider SparseAdam "
             "instead"));
}

void AdamBase::check_loaded_state(std::size_t i, const ParamState& state) const {
  require_state(i, state, {"exp_avg", "exp_avg_sq"}, {"max_exp_avg_sq"});
  Optimizer::check_loaded_state(i, state);
}

void AdamBase::check_rows_update(std::size_t i) const {
  if (!config_.lazy) {
    throw NotImplementedError(ops::param_prefix(name(), i) +
                              "a fused backward + step needs a sparse-aware optimizer (LazyAdam, "
                              "LazyAdamW, SparseAdam, Adagrad, RowWiseAdagrad, SGD)");
  }
}

void AdamBase::update_rows(std::size_t /*i*/, Parameter& param, ParamState& state,
                           const detail::SparseRows& given) {
  init_state(param.data(), state);
  const detail::AdamHyper k = ops::adam_hyper(config_, state.step);
  detail::SparseRows rows = given;
  rows.maximize = k.maximize;  // the coalesced gradient is negated; the element update is not
  detail::fast::adam_rows(
      rows, k, param.data().raw_data(), state.tensors.at("exp_avg").raw_data(),
      state.tensors.at("exp_avg_sq").raw_data(),
      config_.amsgrad ? state.tensors.at("max_exp_avg_sq").raw_data() : nullptr);
}

void AdamBase::init_state(const Tensor& theta, ParamState& state) const {
  if (state.tensors.empty()) {
    state.tensors["exp_avg"] = Tensor::zeros(theta.shape(), theta.dtype());
    state.tensors["exp_avg_sq"] = Tensor::zeros(theta.shape(), theta.dtype());
    if (config_.amsgrad)
      state.tensors["max_exp_avg_sq"] = Tensor::zeros(theta.shape(), theta.dtype());
  } else if (config_.amsgrad && state.tensors.count("max_exp_avg_sq") == 0) {
    state.tensors["max_exp_avg_sq"] = Tensor::zeros(theta.shape(), theta.dtype());
  }
}

void AdamBase::update(std::size_t i, Parameter& param, ParamState& state) {
  const Tensor& theta = param.data();
  if (param.grad_is_sparse()) {  // lazy: only the gradient's rows, each once
    const ops::GroupedGrad g = ops::group_rows(param.sparse_grad());
    update_rows(i, param, state, g.rows);
    return;
  }
  init_state(theta, state);
  const detail::AdamHyper k = ops::adam_hyper(config_, state.step);
  void* m = state.tensors.at("exp_avg").raw_data();
  void* v = state.tensors.at("exp_avg_sq").raw_data();
  void* vmax = config_.amsgrad ? state.tensors.at("max_exp_avg_sq").raw_data() : nullptr;
  detail::fast::adam_dense(theta.dtype(), k, theta.numel(), param.grad().raw_data(),
                           theta.raw_data(), m, v, vmax);
}

Adam::Adam(std::vector<Parameter*> params, const AdamOptions& options)
    : AdamBase(std::move(params), make_config(options, false, false), "Adam"), options_(options) {}

AdamW::AdamW(std::vector<Parameter*> params, const AdamWOptions& options)
    : AdamBase(std::move(params), make_config(options, true, false), "AdamW"), options_(options) {}

LazyAdam::LazyAdam(std::vector<Parameter*> params, const AdamOptions& options)
    : AdamBase(std::move(params), make_config(options, false, true), "LazyAdam"),
      options_(options) {}

LazyAdamW::LazyAdamW(std::vector<Parameter*> params, const AdamWOptions& options)
    : AdamBase(std::move(params), make_config(options, true, true), "LazyAdamW"),
      options_(options) {}

}  // namespace emb::optim

namespace emb::detail::optim {

AdamHyper adam_hyper(const emb::optim::detail_adam::Config& c, std::int64_t step) {
  const double t = static_cast<double>(step);
  const double bias_correction1 = 1 - std::pow(c.beta1, t);
  const double bias_correction2 = 1 - std::pow(c.beta2, t);
  AdamHyper k{};
  k.maximize = c.maximize;
  k.l2 = !c.decoupled && c.weight_decay != 0.0;
  k.decoupled = c.decoupled && c.weight_decay != 0.0;
  k.amsgrad = c.amsgrad;
  k.wd = c.weight_decay;
  k.decay = 1 - c.lr * c.weight_decay;
  k.beta1 = c.beta1;
  k.one_minus_beta1 = 1 - c.beta1;
  k.beta2 = c.beta2;
  k.one_minus_beta2 = 1 - c.beta2;
  k.bc2_sqrt = std::sqrt(bias_correction2);
  k.eps = c.eps;
  k.neg_step_size = -(c.lr / bias_correction1);
  return k;
}

}  // namespace emb::detail::optim
