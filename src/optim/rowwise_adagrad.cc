#include "emb/optim/rowwise_adagrad.h"

#include <cmath>

#include "kernels/optim_rows.h"
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

void RowWiseAdagrad::update(std::size_t i, Parameter& param, ParamState& state) {
  const Tensor& theta = param.data();
  if (param.grad_is_sparse()) {
    const ops::GroupedGrad g = ops::group_rows(param.sparse_grad());
    update_rows(i, param, state, g.rows);
    return;
  }
  const std::int64_t n = num_rows(theta);
  const std::int64_t dim = n == 0 ? 0 : theta.numel() / n;
  detail::fast::rowwise_adagrad_dense(
      theta.dtype(), {options_.lr(), options_.eps(), options_.weight_decay()},
      options_.maximize(), n, dim, param.grad().raw_data(), theta.raw_data(),
      state.tensors.at("sum").raw_data());
}

void RowWiseAdagrad::check_rows_update(std::size_t /*i*/) const {}

void RowWiseAdagrad::update_rows(std::size_t /*i*/, Parameter& param, ParamState& state,
                                 const detail::SparseRows& given) {
  detail::SparseRows rows = given;
  rows.maximize = options_.maximize();
  detail::fast::rowwise_adagrad_rows(
      rows, {options_.lr(), options_.eps(), options_.weight_decay()}, param.data().raw_data(),
      state.tensors.at("sum").raw_data());
}

}  // namespace emb::optim
