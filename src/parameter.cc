#include "emb/parameter.h"

#include "index_check.h"
#include "kernels/ref/embedding_ref.h"
#include "sparse_grad_access.h"

namespace emb {

void Parameter::set_data(Tensor data) {
  data_ = std::move(data);
  zero_grad();
}

const Tensor& Parameter::grad() const {
  if (!dense_grad_.defined()) {
    throw ValueError(sparse_grad_ ? "Parameter::grad: the gradient is sparse; use sparse_grad()"
                                  : "Parameter::grad: there is no gradient");
  }
  return dense_grad_;
}

const SparseGrad& Parameter::sparse_grad() const {
  if (!sparse_grad_) {
    throw ValueError(dense_grad_.defined()
                         ? "Parameter::sparse_grad: the gradient is dense; use grad()"
                         : "Parameter::sparse_grad: there is no gradient");
  }
  return *sparse_grad_;
}

void Parameter::check_grad(const Shape& shape, DType dtype, const char* what) const {
  if (!data_.defined()) throw ValueError(std::string(what) + ": the parameter has no tensor");
  if (shape != data_.shape() || dtype != data_.dtype()) {
    throw ValueError(std::string(what) + ": gradient of shape " + shape_to_string(shape) + " " +
                     std::string(dtype_name(dtype)) + " does not match the parameter's " +
                     shape_to_string(data_.shape()) + " " + std::string(dtype_name(data_.dtype())));
  }
}

namespace {

// dense[ids[j]] += values[j] for each row j in order, rounding after each addition: how autograd
// adds a sparse gradient onto a dense one ((d + s1) + s2, not d + (s1 + s2)).
void add_sparse_rows(const Tensor& dense, const SparseGrad& sparse) {
  const std::int64_t* ids = detail::SparseGradAccess::ids(sparse).data<std::int64_t>();
  const std::int64_t dim = sparse.dim();
  detail::visit_floating(sparse.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using A = detail::ref::acc_t<T>;
    const T* v = sparse.values().data<T>();
    T* out = dense.data<T>();
    for (std::int64_t j = 0; j < sparse.nnz(); ++j) {
      T* row = out + ids[j] * dim;
      for (std::int64_t d = 0; d < dim; ++d) row[d] = T(A(row[d]) + A(v[j * dim + d]));
    }
  });
}

}  // namespace

void Parameter::accumulate_grad(const Tensor& grad) {
  accumulate_dense(grad, false);
}

void Parameter::accumulate_grad(Tensor&& grad) {
  accumulate_dense(grad, true);
}

void Parameter::accumulate_dense(const Tensor& grad, bool take) {
  if (!requires_grad_) return;
  if (!grad.defined()) throw ValueError("Parameter::accumulate_grad: grad is undefined");
  check_grad(grad.shape(), grad.dtype(), "Parameter::accumulate_grad");
  detail::check_floating(grad, "Parameter::accumulate_grad", "grad");
  if (sparse_grad_) {  // sparse + dense -> dense: the sparse rows go onto the dense gradient
    Tensor sum = take && grad.owns_memory() ? grad : grad.clone();
    add_sparse_rows(sum, *sparse_grad_);
    dense_grad_ = std::move(sum);
    sparse_grad_.reset();
    return;
  }
  if (!dense_grad_.defined()) {
    dense_grad_ = take && grad.owns_memory() ? grad : grad.clone();
    return;
  }
  detail::visit_floating(grad.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using A = detail::ref::acc_t<T>;
    T* acc = dense_grad_.data<T>();
    const T* g = grad.data<T>();
    for (std::int64_t i = 0; i < grad.numel(); ++i) acc[i] = T(A(acc[i]) + A(g[i]));
  });
}

void Parameter::accumulate_grad(const SparseGrad& grad) {
  if (!requires_grad_) return;
  if (!data_.defined()) {
    throw ValueError("Parameter::accumulate_grad: the parameter has no tensor");
  }
  if (data_.dim() != 2) {
    throw ValueError("Parameter::accumulate_grad: a sparse gradient needs a 2-D parameter, got " +
                     shape_to_string(data_.shape()));
  }
  check_grad({grad.num_rows(), grad.dim()}, grad.dtype(), "Parameter::accumulate_grad");
  if (dense_grad_.defined()) {  // dense + sparse -> dense
    add_sparse_rows(dense_grad_, grad);
  } else if (sparse_grad_) {
    sparse_grad_->append(grad);
  } else {
    sparse_grad_ = grad;
  }
}

void Parameter::zero_grad() {
  dense_grad_ = Tensor();
  sparse_grad_.reset();
}

}  // namespace emb
