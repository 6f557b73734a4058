#include "emb/optim/adagrad.h"

#include <cmath>

#include "optim/ops.h"

namespace emb::optim {

namespace ops = emb::detail::optim;

Adagrad::Adagrad(std::vector<Parameter*> params, const AdagradOptions& options)
    : Optimizer(std::move(params), "Adagrad"), options_(options) {
  const AdagradOptions& o = options_;
  ops::check_hyper(o.lr() >= 0.0, "learning rate", o.lr());
  ops::check_hyper(o.lr_decay() >= 0.0, "lr_decay value", o.lr_decay());
  ops::check_hyper(o.weight_decay() >= 0.0, "weight_decay value", o.weight_decay());
  ops::check_hyper(o.initial_accumulator_value() >= 0.0, "initial_accumulator_value value",
                   o.initial_accumulator_value());
  ops::check_hyper(o.eps() >= 0.0, "epsilon value", o.eps());
  // Like PyTorch, the state exists from the start: step 0 and sum = initial_accumulator_value.
  for (std::size_t i = 0; i < params_.size(); ++i) {
    state_[i].tensors["sum"] = ops::full_like(params_[i]->data(), o.initial_accumulator_value());
  }
}

void Adagrad::set_lr(double lr) {
  ops::check_hyper(lr >= 0.0, "learning rate", lr);
  options_.lr(lr);
}

void Adagrad::check_grad(std::size_t i, const Parameter& param) const {
  if (param.grad_is_sparse() && options_.weight_decay() != 0.0) {
    throw NotImplementedError(ops::param_prefix("Adagrad", i) +
                              "weight_decay option is not compatible with sparse gradients");
  }
}

void Adagrad::check_loaded_state(std::size_t i, const ParamState& state) const {
  if (state.tensors.size() != 1 || state.tensors.count("sum") == 0) {
    throw FormatError("Adagrad::load: parameter " + std::to_string(i) +
                      ": expected exactly one state tensor \"sum\"");
  }
  Optimizer::check_loaded_state(i, state);
}

void Adagrad::update(std::size_t /*i*/, Parameter& param, ParamState& state) {
  const Tensor& theta = param.data();
  const double clr_d =
      options_.lr() / (1 + static_cast<double>(state.step - 1) * options_.lr_decay());
  const Tensor& sum_t = state.tensors.at("sum");
  ops::visit_param_dtype(theta.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T neg_clr = static_cast<T>(-clr_d);
    const T eps = static_cast<T>(options_.eps());
    T* w = theta.data<T>();
    T* sum = sum_t.data<T>();
    if (param.grad_is_sparse()) {
      const ops::CoalescedRows g = ops::coalesce_rows(param.sparse_grad(), options_.maximize());
      const std::int64_t* ids = g.ids.data<std::int64_t>();
      const T* v = g.values.data<T>();
      const std::size_t row_bytes = static_cast<std::size_t>(g.dim) * sizeof(T);
      for (std::int64_t j = 0; j < g.n; ++j) {
        if (j + ops::kPrefetchRows < g.n) {
          ops::prefetch_row(w + ids[j + ops::kPrefetchRows] * g.dim, row_bytes);
          ops::prefetch_row(sum + ids[j + ops::kPrefetchRows] * g.dim, row_bytes);
        }
        T* row = w + ids[j] * g.dim;
        T* acc = sum + ids[j] * g.dim;
        const T* gv = v + j * g.dim;
        for (std::int64_t d = 0; d < g.dim; ++d) {
          acc[d] = acc[d] + gv[d] * gv[d];                             // sum[r] += v^2
          const T std_v = std::sqrt(acc[d]) + eps;                     // sqrt(sum[r]) + eps
          row[d] = ops::add_alpha<T>(row[d], gv[d] / std_v, neg_clr);  // θ[r] += -clr * v / std
        }
      }
      return;
    }
    const T* gp = param.grad().data<T>();
    const T wd = static_cast<T>(options_.weight_decay());
    const bool decay = options_.weight_decay() != 0.0;
    for (std::int64_t k = 0; k < theta.numel(); ++k) {
      T g = options_.maximize() ? -gp[k] : gp[k];
      if (decay) g = ops::add_alpha<T>(g, w[k], wd);
      sum[k] = ops::addcmul<T>(sum[k], g, g, T(1));
      const T std_v = std::sqrt(sum[k]) + eps;
      w[k] = ops::addcdiv<T>(w[k], g, std_v, neg_clr);
    }
  });
}

}  // namespace emb::optim
