// emb/optim/adam.h — Adam and AdamW (torch.optim.Adam / AdamW): dense gradients only.
//
//   emb::optim::AdamW opt(params, emb::optim::AdamWOptions(1e-3).weight_decay(0.01));
//
// State per parameter: step t, "exp_avg" m, "exp_avg_sq" v (and "max_exp_avg_sq" with amsgrad),
// zeros of θ's shape made on the first step. Per step (PyTorch's op order, bitwise in float64):
//   g = maximize ? -g : g
//   Adam:  if weight_decay != 0: g = g + weight_decay * θ      (L2, coupled)
//   AdamW: θ = θ * (1 - lr * weight_decay)                     (decoupled, first)
//   m = β1 * m + (1 - β1) * g
//   v = β2 * v + (1 - β2) * g * g
//   amsgrad: vmax = max(vmax, v), used in place of v below
//   denom = sqrt(v) / sqrt(1 - β2^t) + eps
//   θ = θ - (lr / (1 - β1^t)) * m / denom
// For sparse gradients use SparseAdam, LazyAdam or LazyAdamW.
#pragma once

#include <tuple>
#include <vector>

#include "emb/optim/optimizer.h"

namespace emb::optim {

/// Options of Adam (weight_decay default 0) and, through AdamWOptions, AdamW (default 1e-2).
template <typename Derived>
class AdamOptionsBase {
 public:
  explicit AdamOptionsBase(double lr, double weight_decay) : lr_(lr), weight_decay_(weight_decay) {}
  Derived& lr(double v) {
    lr_ = v;
    return self();
  }
  Derived& betas(std::tuple<double, double> v) {
    betas_ = v;
    return self();
  }
  Derived& eps(double v) {
    eps_ = v;
    return self();
  }
  Derived& weight_decay(double v) {
    weight_decay_ = v;
    return self();
  }
  Derived& amsgrad(bool v) {
    amsgrad_ = v;
    return self();
  }
  Derived& maximize(bool v) {
    maximize_ = v;
    return self();
  }
  double lr() const { return lr_; }
  const std::tuple<double, double>& betas() const { return betas_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  bool amsgrad() const { return amsgrad_; }
  bool maximize() const { return maximize_; }

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
  double lr_;
  std::tuple<double, double> betas_{0.9, 0.999};
  double eps_ = 1e-8;
  double weight_decay_;
  bool amsgrad_ = false;
  bool maximize_ = false;
};

class AdamOptions : public AdamOptionsBase<AdamOptions> {
 public:
  explicit AdamOptions(double lr = 1e-3) : AdamOptionsBase(lr, 0.0) {}
};

class AdamWOptions : public AdamOptionsBase<AdamWOptions> {
 public:
  explicit AdamWOptions(double lr = 1e-3) : AdamOptionsBase(lr, 1e-2) {}
};

namespace detail_adam {
/// What Adam, AdamW, LazyAdam and LazyAdamW share: options as plain values and the row update.
struct Config {
  double lr, beta1, beta2, eps, weight_decay;
  bool amsgrad, maximize, decoupled, lazy;
};
}  // namespace detail_adam

/// The common implementation of Adam, AdamW, LazyAdam and LazyAdamW.
class AdamBase : public Optimizer {
 public:
  double lr() const override { return config_.lr; }
  void set_lr(double lr) override;

 protected:
  AdamBase(std::vector<Parameter*> params, const detail_adam::Config& config, const char* what);
  void check_grad(std::size_t i, const Parameter& param) const override;
  void update(std::size_t i, Parameter& param, ParamState& state) override;
  /// Fused steps: LazyAdam and LazyAdamW only (Adam and AdamW refuse sparse gradients).
  void check_rows_update(std::size_t i) const override;
  void update_rows(std::size_t i, Parameter& param, ParamState& state,
                   const detail::SparseRows& rows) override;
  void check_loaded_state(std::size_t i, const ParamState& state) const override;
  virtual void store_lr(double lr) = 0;

  detail_adam::Config config_;

 private:
  // Creates exp_avg, exp_avg_sq (and max_exp_avg_sq) on the first update.
  void init_state(const Tensor& theta, ParamState& state) const;
};

class Adam : public AdamBase {
 public:
  /// Throws ValueError: "Invalid learning rate: -1.0", "Invalid epsilon value: ...",
  /// "Invalid beta parameter at index 0: 1.0" (0 <= β < 1), "Invalid weight_decay value: ...",
  /// and for bad parameter lists. step() with a sparse gradient: NotImplementedError
  /// "Adam does not support sparse gradients, please consider SparseAdam instead".
  Adam(std::vector<Parameter*> params, const AdamOptions& options = AdamOptions());
  const AdamOptions& options() const { return options_; }
  const char* name() const override { return "Adam"; }

 protected:
  void store_lr(double lr) override { options_.lr(lr); }

 private:
  AdamOptions options_;
};

class AdamW : public AdamBase {
 public:
  /// As Adam; sparse gradients: NotImplementedError "AdamW does not support sparse gradients".
  AdamW(std::vector<Parameter*> params, const AdamWOptions& options = AdamWOptions());
  const AdamWOptions& options() const { return options_; }
  const char* name() const override { return "AdamW"; }

 protected:
  void store_lr(double lr) override { options_.lr(lr); }

 private:
  AdamWOptions options_;
};

}  // namespace emb::optim
