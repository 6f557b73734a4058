// emb/parameter.h — a learnable tensor and the gradient accumulated into it (torch.nn.Parameter
// with its .grad). Modules own their weight as a Parameter; optimizers update Parameters.
#pragma once

#include <optional>

#include "emb/sparse_grad.h"
#include "emb/tensor.h"

namespace emb {

class Parameter {
 public:
  Parameter() = default;
  explicit Parameter(Tensor data, bool requires_grad = true)
      : data_(std::move(data)), requires_grad_(requires_grad) {}

  const Tensor& data() const { return data_; }
  /// Replaces the tensor (the old gradient no longer applies and is cleared).
  void set_data(Tensor data);
  bool requires_grad() const { return requires_grad_; }
  /// Frozen parameters (requires_grad false) receive no gradient.
  void set_requires_grad(bool value) { requires_grad_ = value; }

  bool has_grad() const { return dense_grad_.defined() || sparse_grad_.has_value(); }
  bool grad_is_sparse() const { return sparse_grad_.has_value(); }
  /// The dense gradient; throws ValueError if there is none or it is sparse.
  const Tensor& grad() const;
  /// The sparse gradient; throws ValueError if there is none or it is dense.
  const SparseGrad& sparse_grad() const;

  /// Adds a gradient as autograd does: a dense gradient is summed element-wise into the dense
  /// one; a sparse gradient is appended (uncoalesced); sparse + dense gives a dense gradient,
  /// the sparse rows added one by one onto the dense one ((d + s1) + s2, in either order).
  /// Does nothing for a frozen parameter. Throws ValueError on a shape or dtype mismatch.
  void accumulate_grad(const Tensor& grad);
  /// The same, but a first gradient is taken over without a copy (pass a tensor no one else
  /// holds, such as the result of a backward function).
  void accumulate_grad(Tensor&& grad);
  void accumulate_grad(const SparseGrad& grad);
  /// Drops the gradient (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad();

 private:
  void check_grad(const Shape& shape, DType dtype, const char* what) const;
  void accumulate_dense(const Tensor& grad, bool take);

  Tensor data_;
  bool requires_grad_ = true;
  Tensor dense_grad_;
  std::optional<SparseGrad> sparse_grad_;
};

}  // namespace emb
