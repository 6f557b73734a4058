#include "emb/optim/sparse_adam.h"

#include <cmath>

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

void SparseAdam::update(std::size_t /*i*/, Parameter& param, ParamState& state) {
  const Tensor& theta = param.data();
  if (state.tensors.empty()) {
    state.tensors["exp_avg"] = Tensor::zeros(theta.shape(), theta.dtype());
    state.tensors["exp_avg_sq"] = Tensor::zeros(theta.shape(), theta.dtype());
  }
  const ops::CoalescedRows g = ops::coalesce_rows(param.sparse_grad(), options_.maximize());
  if (g.n == 0) return;  // PyTorch skips an empty gradient (the step count still advances)
  // Plain variables, not a structured binding: the lambda below captures them (clang 14).
  const double beta1 = std::get<0>(options_.betas());
  const double beta2 = std::get<1>(options_.betas());
  const double t = static_cast<double>(state.step);
  const double bias_correction1 = 1 - std::pow(beta1, t);
  const double bias_correction2 = 1 - std::pow(beta2, t);
  const double step_size = options_.lr() * std::sqrt(bias_correction2) / bias_correction1;
  ops::visit_param_dtype(theta.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T one_minus_b1 = static_cast<T>(1 - beta1);
    const T one_minus_b2 = static_cast<T>(1 - beta2);
    const T eps = static_cast<T>(options_.eps());
    const T neg_step = static_cast<T>(-step_size);
    T* w = theta.data<T>();
    T* m = state.tensors.at("exp_avg").data<T>();
    T* s = state.tensors.at("exp_avg_sq").data<T>();
    const std::int64_t* ids = g.ids.data<std::int64_t>();
    const T* v = g.values.data<T>();
    const std::size_t row_bytes = static_cast<std::size_t>(g.dim) * sizeof(T);
    for (std::int64_t j = 0; j < g.n; ++j) {
      if (j + ops::kPrefetchRows < g.n) {
        const std::int64_t ahead = ids[j + ops::kPrefetchRows] * g.dim;
        ops::prefetch_row(w + ahead, row_bytes);
        ops::prefetch_row(m + ahead, row_bytes);
        ops::prefetch_row(s + ahead, row_bytes);
      }
      const std::int64_t off = ids[j] * g.dim;
      const T* gv = v + j * g.dim;
      for (std::int64_t d = 0; d < g.dim; ++d) {
        const T m_old = m[off + d];
        const T dm = (gv[d] - m_old) * one_minus_b1;  // Δm = (v - m_old)(1 - β1)
        m[off + d] = m_old + dm;
        const T s_old = s[off + d];
        const T ds = (gv[d] * gv[d] - s_old) * one_minus_b2;  // Δs = (v² - s_old)(1 - β2)
        s[off + d] = s_old + ds;
        const T numer = dm + m_old;
        const T denom = std::sqrt(ds + s_old) + eps;
        w[off + d] = w[off + d] + (numer / denom) * neg_step;  // θ[r] += -step_size * numer/denom
      }
    }
  });
}

}  // namespace emb::optim
