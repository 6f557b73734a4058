// emb/optim/adagrad.h — Adagrad (torch.optim.Adagrad), dense and sparse gradients.
//
//   emb::optim::Adagrad opt(params, emb::optim::AdagradOptions(0.1).lr_decay(1e-4));
//
// State per parameter: step, and "sum" (shape of θ, filled with initial_accumulator_value when the
// optimizer is made). Per step t (PyTorch's op order):
//   g = maximize ? -g : g
//   if weight_decay != 0: g = g + weight_decay * θ             (dense gradients only)
//   clr = lr / (1 + (t - 1) * lr_decay)
//   dense:  sum += g * g;             θ -= clr * g / (sqrt(sum) + eps)
//   sparse: g = coalesce(g)  (duplicate rows summed first, in input order; see OPTIMIZERS.md
//           for where PyTorch's order differs); for each row r of g:
//           sum[r] += g[r]^2;         θ[r] -= clr * g[r] / (sqrt(sum[r]) + eps)
// A sparse step touches only the rows of the gradient.
#pragma once

#include <vector>

#include "emb/optim/optimizer.h"

namespace emb::optim {

class AdagradOptions {
 public:
  explicit AdagradOptions(double lr = 1e-2) : lr_(lr) {}
  AdagradOptions& lr(double v) {
    lr_ = v;
    return *this;
  }
  AdagradOptions& lr_decay(double v) {
    lr_decay_ = v;
    return *this;
  }
  AdagradOptions& weight_decay(double v) {
    weight_decay_ = v;
    return *this;
  }
  AdagradOptions& initial_accumulator_value(double v) {
    initial_accumulator_value_ = v;
    return *this;
  }
  AdagradOptions& eps(double v) {
    eps_ = v;
    return *this;
  }
  AdagradOptions& maximize(bool v) {
    maximize_ = v;
    return *this;
  }
  double lr() const { return lr_; }
  double lr_decay() const { return lr_decay_; }
  double weight_decay() const { return weight_decay_; }
  double initial_accumulator_value() const { return initial_accumulator_value_; }
  double eps() const { return eps_; }
  bool maximize() const { return maximize_; }

 private:
  double lr_;
  double lr_decay_ = 0;
  double weight_decay_ = 0;
  double initial_accumulator_value_ = 0;
  double eps_ = 1e-10;
  bool maximize_ = false;
};

class Adagrad : public Optimizer {
 public:
  /// Throws ValueError: "Invalid learning rate: -1.0", "Invalid lr_decay value: ...",
  /// "Invalid weight_decay value: ...", "Invalid initial_accumulator_value value: ...",
  /// "Invalid epsilon value: ..." (each must be >= 0), and for bad parameter lists.
  Adagrad(std::vector<Parameter*> params, const AdagradOptions& options = AdagradOptions());

  const AdagradOptions& options() const { return options_; }
  double lr() const override { return options_.lr(); }
  void set_lr(double lr) override;
  const char* name() const override { return "Adagrad"; }

 protected:
  /// A sparse gradient with weight_decay != 0 -> NotImplementedError.
  void check_grad(std::size_t i, const Parameter& param) const override;
  void check_rows_update(std::size_t i) const override;
  void update_rows(std::size_t i, Parameter& param, ParamState& state,
                   const detail::SparseRows& rows) override;
  void update(std::size_t i, Parameter& param, ParamState& state) override;
  void check_loaded_state(std::size_t i, const ParamState& state) const override;

 private:
  AdagradOptions options_;
};

}  // namespace emb::optim
