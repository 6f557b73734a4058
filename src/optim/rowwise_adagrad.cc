#include "emb/optim/rowwise_adagrad.h"

#include <cmath>

#include "optim/ops.h"

namespace emb::optim {

namespace ops = emb::detail::optim;

namespace {

// θ seen as [num_rows, row_dim]: a 0-d parameter is one row of one element.
std::int64_t num_rows(const Tensor& t) {
  return t.dim() == 0 ? 1 : t.size(0);
}

}  // namespace

RowWiseAdagrad::RowWiseAdagrad(std::vector<Parameter*> params, const RowWiseAdagradOptions& options)
    : Optimizer(std::move(params), "RowWiseAdagrad"), options_(options) {
  const RowWiseAdagradOptions& o = options_;
  ops::check_hyper(o.lr() >= 0.0, "learning rate", o.lr());
  ops::check_hyper(o.weight_decay() >= 0.0, "weight_decay value", o.weight_decay());
  ops::check_hyper(o.initial_accumulator_value() >= 0.0, "initial_accumulator_value value",
                   o.initial_accumulator_value());
  ops::check_hyper(o.eps() >= 0.0, "epsilon value", o.eps());
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Tensor& data = params_[i]->data();
    state_[i].tensors["sum"] =
        Tensor::full({num_rows(data)}, o.initial_accumulator_value(), data.dtype());
  }
}

void RowWiseAdagrad::set_lr(double lr) {
  ops::check_hyper(lr >= 0.0, "learning rate", lr);
  options_.lr(lr);
}

void RowWiseAdagrad::check_grad(std::size_t /*i*/, const Parameter& /*param*/) const {}

void RowWiseAdagrad::check_loaded_state(std::size_t i, const ParamState& state) const {
  const Tensor& data = params_[i]->data();
  const auto it = state.tensors.find("sum");
  if (state.tensors.size() != 1 || it == state.tensors.end() ||
      it->second.dtype() != data.dtype() || it->second.shape() != Shape{num_rows(data)}) {
    throw FormatError("RowWiseAdagrad::load: parameter " + std::to_string(i) +
                      ": expected one state tensor \"sum\" of shape [" +
                      std::to_string(num_rows(data)) + "] " +
                      std::string(dtype_name(data.dtype())));
  }
}

void RowWiseAdagrad::update(std::size_t /*i*/, Parameter& param, ParamState& state) {
  const Tensor& theta = param.data();
  ops::visit_param_dtype(theta.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T lr = static_cast<T>(options_.lr());
    const T eps = static_cast<T>(options_.eps());
    const T wd = static_cast<T>(options_.weight_decay());
    const bool decay = options_.weight_decay() != 0.0;
    T* w = theta.data<T>();
    T* sum = state.tensors.at("sum").data<T>();
    std::vector<T> g;
    // One row: g = grad (+ wd * θ[r]); sum[r] += mean(g²); θ[r] -= lr / (sqrt(sum[r]) + eps) * g.
    auto update_row = [&](std::int64_t r, const T* grad, std::int64_t dim, bool negate) {
      T* row = w + r * dim;
      g.resize(static_cast<std::size_t>(dim));
      T sq = 0;
      for (std::int64_t d = 0; d < dim; ++d) {
        T x = negate ? -grad[d] : grad[d];
        if (decay) x = x + wd * row[d];
        g[static_cast<std::size_t>(d)] = x;
        sq = sq + x * x;
      }
      sum[r] = sum[r] + sq / static_cast<T>(dim);
      const T mult = lr / (std::sqrt(sum[r]) + eps);
      for (std::int64_t d = 0; d < dim; ++d)
        row[d] = row[d] - mult * g[static_cast<std::size_t>(d)];
    };
    if (param.grad_is_sparse()) {
      const ops::CoalescedRows rows = ops::coalesce_rows(param.sparse_grad(), options_.maximize());
      const std::int64_t* ids = rows.ids.data<std::int64_t>();
      const T* v = rows.values.data<T>();
      const std::size_t row_bytes = static_cast<std::size_t>(rows.dim) * sizeof(T);
      for (std::int64_t j = 0; j < rows.n; ++j) {
        if (j + ops::kPrefetchRows < rows.n) {
          ops::prefetch_row(w + ids[j + ops::kPrefetchRows] * rows.dim, row_bytes);
          ops::prefetch_row(sum + ids[j + ops::kPrefetchRows], sizeof(T));
        }
        update_row(ids[j], v + j * rows.dim, rows.dim, false);
      }
      return;
    }
    const std::int64_t n = num_rows(theta);
    const std::int64_t dim = n == 0 ? 0 : theta.numel() / n;
    const T* gp = param.grad().data<T>();
    for (std::int64_t r = 0; r < n && dim > 0; ++r)
      update_row(r, gp + r * dim, dim, options_.maximize());
  });
}

}  // namespace emb::optim
