// emb/optim/sgd.h — stochastic gradient descent (torch.optim.SGD), dense and sparse gradients.
//
//   emb::optim::SGD opt(params, emb::optim::SGDOptions(0.1).momentum(0.9).nesterov(true));
//
// Per parameter, with g its gradient (PyTorch's op order, so float64 results are bitwise
// PyTorch's):
//   d = maximize ? -g : g
//   if weight_decay != 0: d = d + weight_decay * θ          (dense gradients only)
//   if momentum != 0:     buf = d on the first step, else buf = momentum * buf + (1 - dampening) *
//   d
//                         d = nesterov ? d + momentum * buf : buf
//   θ = θ - lr * d
// Sparse gradients: without momentum the rows are applied one by one in gradient order
// (duplicates included), exactly as PyTorch does. With momentum the buffer is row-sparse: it holds
// the rows ever touched, and every one of them moves on every step (as the maths demands); the
// result equals PyTorch's run on the same gradients made dense, bit for bit. See OPTIMIZERS.md.
#pragma once

#include <memory>
#include <vector>

#include "emb/optim/optimizer.h"

namespace emb::optim {

class SGDOptions {
 public:
  /// PyTorch 1.13 requires lr (2.x defaults it to 1e-3).
  explicit SGDOptions(double lr) : lr_(lr) {}
  SGDOptions& lr(double v) {
    lr_ = v;
    return *this;
  }
  SGDOptions& momentum(double v) {
    momentum_ = v;
    return *this;
  }
  SGDOptions& dampening(double v) {
    dampening_ = v;
    return *this;
  }
  SGDOptions& weight_decay(double v) {
    weight_decay_ = v;
    return *this;
  }
  SGDOptions& nesterov(bool v) {
    nesterov_ = v;
    return *this;
  }
  SGDOptions& maximize(bool v) {
    maximize_ = v;
    return *this;
  }
  double lr() const { return lr_; }
  double momentum() const { return momentum_; }
  double dampening() const { return dampening_; }
  double weight_decay() const { return weight_decay_; }
  bool nesterov() const { return nesterov_; }
  bool maximize() const { return maximize_; }

 private:
  double lr_;
  double momentum_ = 0;
  double dampening_ = 0;
  double weight_decay_ = 0;
  bool nesterov_ = false;
  bool maximize_ = false;
};

class SGD : public Optimizer {
 public:
  /// Throws ValueError: "Invalid learning rate: -1.0", "Invalid momentum value: -0.5",
  /// "Invalid weight_decay value: -1.0", "Nesterov momentum requires a momentum and zero
  /// dampening", and for bad parameter lists.
  SGD(std::vector<Parameter*> params, const SGDOptions& options);

  const SGDOptions& options() const { return options_; }
  double lr() const override { return options_.lr(); }
  void set_lr(double lr) override;
  const char* name() const override { return "SGD"; }

 protected:
  /// A sparse gradient with weight_decay != 0 -> NotImplementedError.
  void check_grad(std::size_t i, const Parameter& param) const override;
  void check_rows_update(std::size_t i) const override;
  void update_rows(std::size_t i, Parameter& param, ParamState& state,
                   const detail::SparseRows& rows) override;
  void update(std::size_t i, Parameter& param, ParamState& state) override;
  void check_loaded_state(std::size_t i, const ParamState& state) const override;
  void on_state_loaded() override;

 private:
  [[noreturn]] static void throw_sparse_weight_decay(std::size_t i);

  SGDOptions options_;
  struct RowIndex;  // row id -> slot of a row-sparse momentum buffer
  std::vector<std::shared_ptr<RowIndex>> row_index_;
};

}  // namespace emb::optim
