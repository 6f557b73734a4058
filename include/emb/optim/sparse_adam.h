// emb/optim/sparse_adam.h — SparseAdam (torch.optim.SparseAdam): sparse gradients only.
//
//   emb::optim::SparseAdam opt({&table.parameter()}, emb::optim::SparseAdamOptions(1e-2));
//
// State per parameter: step t (+1 on every step() in which it has a gradient, even an empty one),
// "exp_avg" m and "exp_avg_sq" s (zeros of θ's shape, made on the first step). Per step, PyTorch's
// formulation (bitwise in float32 and float64 whenever coalesce() sums duplicates in PyTorch's
// order: at most 16 gradient rows, or fewer than 3 rows per id; see OPTIMIZERS.md):
//   g = coalesce(maximize ? -g : g);  if g has no rows: nothing else happens
//   for each row r of g, with v = g[r]:
//     Δm = (v - m[r]) * (1 - β1);      m_new = m[r] + Δm
//     Δs = (v*v - s[r]) * (1 - β2);    s_new = s[r] + Δs
//     θ[r] += ((Δm + m[r]) / (sqrt(Δs + s[r]) + eps)) * -(lr * sqrt(1 - β2^t) / (1 - β1^t))
//     m[r] = m_new; s[r] = s_new
// Rows not in g are untouched. Unlike Adam, eps is added to the un-bias-corrected sqrt(s).
#pragma once

#include <tuple>
#include <vector>

#include "emb/optim/optimizer.h"

namespace emb::optim {

class SparseAdamOptions {
 public:
  explicit SparseAdamOptions(double lr = 1e-3) : lr_(lr) {}
  SparseAdamOptions& lr(double v) {
    lr_ = v;
    return *this;
  }
  SparseAdamOptions& betas(std::tuple<double, double> v) {
    betas_ = v;
    return *this;
  }
  SparseAdamOptions& eps(double v) {
    eps_ = v;
    return *this;
  }
  SparseAdamOptions& maximize(bool v) {
    maximize_ = v;
    return *this;
  }
  double lr() const { return lr_; }
  const std::tuple<double, double>& betas() const { return betas_; }
  double eps() const { return eps_; }
  bool maximize() const { return maximize_; }

 private:
  double lr_;
  std::tuple<double, double> betas_{0.9, 0.999};
  double eps_ = 1e-8;
  bool maximize_ = false;
};

class SparseAdam : public Optimizer {
 public:
  /// Throws ValueError: "Invalid learning rate: 0.0" (lr > 0), "Invalid epsilon value: 0.0"
  /// (eps > 0), "Invalid beta parameter at index 1: 1.0" (0 <= β < 1), and for bad parameter
  /// lists. step() with a dense gradient: NotImplementedError "SparseAdam does not support dense
  /// gradients, please consider Adam instead".
  SparseAdam(std::vector<Parameter*> params,
             const SparseAdamOptions& options = SparseAdamOptions());

  const SparseAdamOptions& options() const { return options_; }
  double lr() const override { return options_.lr(); }
  void set_lr(double lr) override;
  const char* name() const override { return "SparseAdam"; }

 protected:
  void check_grad(std::size_t i, const Parameter& param) const override;
  void update(std::size_t i, Parameter& param, ParamState& state) override;
  void check_rows_update(std::size_t i) const override;
  void update_rows(std::size_t i, Parameter& param, ParamState& state,
                   const detail::SparseRows& rows) override;
  void check_loaded_state(std::size_t i, const ParamState& state) const override;

 private:
  SparseAdamOptions options_;
};

}  // namespace emb::optim
