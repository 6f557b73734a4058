// emb/optim/rowwise_adagrad.h — row-wise Adagrad: one accumulator per row instead of one per
// element (beyond PyTorch; FBGEMM's rowwise sparse Adagrad, the recommender-system default).
//
//   emb::optim::RowWiseAdagrad opt({&table.parameter()}, emb::optim::RowWiseAdagradOptions(0.1));
//
// The parameter is seen as rows: θ [num_rows, row_dim] with num_rows = size(0) and row_dim the
// product of the other sizes (a 1-D parameter has rows of one element, a 0-d one is one row).
// State: step and "sum" [num_rows], filled with initial_accumulator_value when the optimizer is
// made: 1/row_dim of Adagrad's memory. For each row r of the gradient (sparse: coalesce(g), its
// rows; dense: all rows), in θ's dtype:
//   g = maximize ? -g : g;  if weight_decay != 0: g = g + weight_decay * θ[r]
//   mean = (g[0]^2 + g[1]^2 + ... + g[row_dim-1]^2) / row_dim      (summed in order)
//   sum[r] += mean
//   mult = lr / (sqrt(sum[r]) + eps)
//   θ[r][d] -= mult * g[d]
// With row_dim = 1 this is Adagrad. The weight decay applies only to rows present in the gradient.
#pragma once

#include <vector>

#include "emb/optim/optimizer.h"

namespace emb::optim {

class RowWiseAdagradOptions {
 public:
  explicit RowWiseAdagradOptions(double lr = 1e-2) : lr_(lr) {}
  RowWiseAdagradOptions& lr(double v) {
    lr_ = v;
    return *this;
  }
  RowWiseAdagradOptions& weight_decay(double v) {
    weight_decay_ = v;
    return *this;
  }
  RowWiseAdagradOptions& initial_accumulator_value(double v) {
    initial_accumulator_value_ = v;
    return *this;
  }
  RowWiseAdagradOptions& eps(double v) {
    eps_ = v;
    return *this;
  }
  RowWiseAdagradOptions& maximize(bool v) {
    maximize_ = v;
    return *this;
  }
  double lr() const { return lr_; }
  double weight_decay() const { return weight_decay_; }
  double initial_accumulator_value() const { return initial_accumulator_value_; }
  double eps() const { return eps_; }
  bool maximize() const { return maximize_; }

 private:
  double lr_;
  double weight_decay_ = 0;
  double initial_accumulator_value_ = 0;
  double eps_ = 1e-10;
  bool maximize_ = false;
};

class RowWiseAdagrad : public Optimizer {
 public:
  /// Throws ValueError as Adagrad ("Invalid learning rate: ..." etc., each must be >= 0), and
  /// for bad parameter lists.
  RowWiseAdagrad(std::vector<Parameter*> params,
                 const RowWiseAdagradOptions& options = RowWiseAdagradOptions());

  const RowWiseAdagradOptions& options() const { return options_; }
  double lr() const override { return options_.lr(); }
  void set_lr(double lr) override;
  const char* name() const override { return "RowWiseAdagrad"; }

 protected:
  void check_grad(std::size_t i, const Parameter& param) const override;
  void check_rows_update(std::size_t i) const override;
  void update_rows(std::size_t i, Parameter& param, ParamState& state,
                   const detail::SparseRows& rows) override;
  void update(std::size_t i, Parameter& param, ParamState& state) override;
  void check_loaded_state(std::size_t i, const ParamState& state) const override;

 private:
  RowWiseAdagradOptions options_;
};

}  // namespace emb::optim
