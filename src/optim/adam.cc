#include "emb/optim/adam.h"

#include <cmath>

#include "emb/optim/lazy_adam.h"
#include "optim/adam_elements.h"
#include "optim/ops.h"

namespace emb::optim {

namespace ops = emb::detail::optim;
using ops::adam_elements;
using ops::Coeffs;
using ops::make_coeffs;
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

void AdamBase::update(std::size_t /*i*/, Parameter& param, ParamState& state) {
  const Tensor& theta = param.data();
  if (state.tensors.empty()) {
    state.tensors["exp_avg"] = Tensor::zeros(theta.shape(), theta.dtype());
    state.tensors["exp_avg_sq"] = Tensor::zeros(theta.shape(), theta.dtype());
    if (config_.amsgrad)
      state.tensors["max_exp_avg_sq"] = Tensor::zeros(theta.shape(), theta.dtype());
  } else if (config_.amsgrad && state.tensors.count("max_exp_avg_sq") == 0) {
    state.tensors["max_exp_avg_sq"] = Tensor::zeros(theta.shape(), theta.dtype());
  }
  ops::visit_param_dtype(theta.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Coeffs<T> k = make_coeffs<T>(config_, state.step);
    T* w = theta.data<T>();
    T* m = state.tensors.at("exp_avg").data<T>();
    T* v = state.tensors.at("exp_avg_sq").data<T>();
    T* vmax = config_.amsgrad ? state.tensors.at("max_exp_avg_sq").data<T>() : nullptr;
    if (!param.grad_is_sparse()) {
      adam_elements<T>(w, param.grad().data<T>(), m, v, vmax, theta.numel(), k);
      return;
    }
    // Lazy: only the gradient's rows, each once (duplicates summed first).
    const ops::CoalescedRows g = ops::coalesce_rows(param.sparse_grad(), k.maximize);
    k.maximize = false;  // already applied
    const std::int64_t* ids = g.ids.data<std::int64_t>();
    const T* gv = g.values.data<T>();
    const std::size_t row_bytes = static_cast<std::size_t>(g.dim) * sizeof(T);
    for (std::int64_t j = 0; j < g.n; ++j) {
      if (j + ops::kPrefetchRows < g.n) {
        const std::int64_t ahead = ids[j + ops::kPrefetchRows] * g.dim;
        ops::prefetch_row(w + ahead, row_bytes);
        ops::prefetch_row(m + ahead, row_bytes);
        ops::prefetch_row(v + ahead, row_bytes);
        if (vmax) ops::prefetch_row(vmax + ahead, row_bytes);
      }
      const std::int64_t off = ids[j] * g.dim;
      adam_elements<T>(w + off, gv + j * g.dim, m + off, v + off, vmax ? vmax + off : nullptr,
                       g.dim, k);
    }
  });
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
