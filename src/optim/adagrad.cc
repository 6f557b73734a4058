#include "emb/optim/adagrad.h"

#include <cmath>

#include "kernels/optim_rows.h"
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
  if (param.grad_is_sparse()) check_rows_update(i);
}

void Adagrad::check_rows_update(std::size_t i) const {
  if (options_.weight_decay() != 0.0) {
    throw NotImplementedError(ops::param_prefix("Adagrad", i) +
                              "weight_decay option is not compatible with sparse gradients");
  }
}

void Adagrad::update_rows(std::size_t /*i*/, Parameter& param, ParamState& state,
                          const detail::SparseRows& given) {
  detail::SparseRows rows = given;
  rows.maximize = options_.maximize();
  const double clr =
      options_.lr() / (1 + static_cast<double>(state.step - 1) * options_.lr_decay());
  detail::fast::adagrad_rows(rows, {clr, options_.eps()}, param.data().raw_data(),
                             state.tensors.at("sum").raw_data());
}

void Adagrad::check_loaded_state(std::size_t i, const ParamState& state) const {
  if (state.tensors.size() != 1 || state.tensors.count("sum") == 0) {
    throw FormatError("Adagrad::load: parameter " + std::to_string(i) +
                      ": expected exactly one state tensor \"sum\"");
  }
  Optimizer::check_loaded_state(i, state);
}

void Adagrad::update(std::size_t i, Parameter& param, ParamState& state) {
  const Tensor& theta = param.data();
  if (param.grad_is_sparse()) {
    const ops::GroupedGrad g = ops::group_rows(param.sparse_grad());
    update_rows(i, param, state, g.rows);
    return;
  }
  const double clr =
      options_.lr() / (1 + static_cast<double>(state.step - 1) * options_.lr_decay());
  detail::fast::adagrad_dense(
      theta.dtype(), {clr, options_.eps(), options_.weight_decay(), options_.maximize()},
      theta.numel(), param.grad().raw_data(), theta.raw_data(), state.tensors.at("sum").raw_data());
}

}  // namespace emb::optim
