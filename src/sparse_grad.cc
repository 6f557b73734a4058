#include "emb/sparse_grad.h"

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "index_check.h"
#include "kernels/fast_sparse.h"
#include "kernels/ref/embedding_ref.h"
#include "sparse_grad_access.h"

namespace emb {

namespace {

// dst[d] += src[d] in the element type (16-bit types: one rounding per addition).
template <typename T>
void add_row(T* dst, const T* src, std::int64_t dim) {
  using A = detail::ref::acc_t<T>;
  for (std::int64_t d = 0; d < dim; ++d) dst[d] = T(A(dst[d]) + A(src[d]));
}

}  // namespace

namespace {

void check_size(std::int64_t v, const char* name) {
  if (v < 0) {
    throw ValueError(std::string("SparseGrad: ") + name + " = " + std::to_string(v) +
                     " is negative");
  }
}

// Everything about ids and values but the id values themselves; returns dim.
std::int64_t check_layout(const Tensor& ids, const Tensor& values, std::int64_t num_rows) {
  if (!ids.defined() || ids.dtype() != DType::kInt64 || ids.dim() != 1) {
    throw ValueError(
        "SparseGrad: ids must be a 1-D int64 tensor, got " +
        (ids.defined() ? std::string(dtype_name(ids.dtype())) + " " + shape_to_string(ids.shape())
                       : std::string("undefined")));
  }
  detail::check_floating(values, "SparseGrad", "values");
  if (values.dim() != 2 || values.size(0) != ids.numel()) {
    throw ValueError("SparseGrad: values has shape " + shape_to_string(values.shape()) +
                     ", expected [" + std::to_string(ids.numel()) + ", dim]");
  }
  check_size(num_rows, "num_rows");
  checked_numel({num_rows, values.size(1)}, "SparseGrad");
  return values.size(1);
}

// The ids' range, and their order when they claim to be coalesced.
void check_ids(const Tensor& ids, std::int64_t num_rows, bool coalesced) {
  detail::check_ids_in_range(ids, num_rows, "SparseGrad", "ids");
  if (!coalesced) return;  // optimizers trust the flag and skip coalescing: check it
  const std::int64_t* p = ids.data<std::int64_t>();
  for (std::int64_t j = 1; j < ids.numel(); ++j) {
    if (p[j] <= p[j - 1]) {
      throw ValueError("SparseGrad: coalesced ids must be strictly increasing, but ids[" +
                       std::to_string(j) + "] = " + std::to_string(p[j]) + " follows " +
                       std::to_string(p[j - 1]));
    }
  }
}

}  // namespace

SparseGrad::SparseGrad(std::int64_t num_rows, std::int64_t dim, DType dtype)
    : num_rows_(num_rows), dim_(dim), coalesced_(true) {
  check_size(num_rows, "num_rows");
  check_size(dim, "dim");
  checked_numel({num_rows, dim}, "SparseGrad");
  if (!is_valid_dtype(dtype) || !is_floating(dtype)) {
    throw ValueError("SparseGrad: dtype must be float32, float64, float16 or bfloat16, got " +
                     (is_valid_dtype(dtype) ? std::string(dtype_name(dtype))
                                            : "code " + std::to_string(static_cast<int>(dtype))));
  }
  ids_ = Tensor::empty({0}, DType::kInt64);
  values_ = Tensor::empty({0, dim}, dtype);
}

SparseGrad::SparseGrad(const Tensor& ids, const Tensor& values, std::int64_t num_rows,
                       bool coalesced)
    : num_rows_(num_rows), coalesced_(coalesced) {
  dim_ = check_layout(ids, values, num_rows);
  // The ids are copied first and the copy is checked: what is validated is what is used.
  Tensor own_ids = ids.clone();
  check_ids(own_ids, num_rows, coalesced);
  ids_ = std::move(own_ids);
  values_ = values.clone();
  // Like PyTorch, a gradient with at most one row is coalesced by definition.
  coalesced_ = coalesced_ || ids_.numel() <= 1;
}

SparseGrad::SparseGrad(Adopt, Tensor ids, Tensor values, std::int64_t num_rows, bool coalesced)
    : num_rows_(num_rows), coalesced_(coalesced) {
  dim_ = check_layout(ids, values, num_rows);
  check_ids(ids, num_rows, coalesced);
  ids_ = std::move(ids);
  values_ = std::move(values);
  coalesced_ = coalesced_ || ids_.numel() <= 1;
}

SparseGrad SparseGrad::coalesce() const {
  const std::int64_t* ids = ids_.data<std::int64_t>();
  const detail::fast::RowGroups groups = detail::fast::group_rows_by_id(ids, nnz(), -1, num_rows_);
  const std::int64_t unique = groups.groups();
  Tensor out_ids = Tensor::empty({unique}, DType::kInt64);
  Tensor out_values = Tensor::empty({unique, dim_}, dtype());
  detail::visit_floating(dtype(), [&](auto tag) {
    using T = decltype(tag);
    const detail::fast::SparseRowsSource<T> source{values_.data<T>(), dim_, nullptr,
                                                   nullptr,           nullptr, nullptr};
    detail::fast::sparse_grad_rows(source, ids, groups.order.data(), groups.starts.data(), unique,
                                   out_ids.data<std::int64_t>(), out_values.data<T>());
  });
  return detail::SparseGradAccess::adopt(std::move(out_ids), std::move(out_values), num_rows_,
                                         true);
}

Tensor SparseGrad::to_dense() const {
  Tensor out = Tensor::zeros({num_rows_, dim_}, dtype());
  const std::int64_t* ids = ids_.data<std::int64_t>();
  detail::visit_floating(dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* v = values_.data<T>();
    T* o = out.data<T>();
    for (std::int64_t j = 0; j < nnz(); ++j) add_row(o + ids[j] * dim_, v + j * dim_, dim_);
  });
  return out;
}

void SparseGrad::append(const SparseGrad& other) {
  if (other.num_rows_ != num_rows_ || other.dim_ != dim_ || other.dtype() != dtype()) {
    throw ValueError("SparseGrad::append: gradient of a [" + std::to_string(other.num_rows_) +
                     ", " + std::to_string(other.dim_) + "] " +
                     std::string(dtype_name(other.dtype())) + " table cannot join one of a [" +
                     std::to_string(num_rows_) + ", " + std::to_string(dim_) + "] " +
                     std::string(dtype_name(dtype())) + " table");
  }
  if (other.nnz() == 0) return;
  if (nnz() == 0) {
    *this = other;
    return;
  }
  const std::int64_t n = nnz() + other.nnz();
  Tensor ids = Tensor::empty({n}, DType::kInt64);
  Tensor values = Tensor::empty({n, dim_}, dtype());
  const std::size_t id_bytes = ids_.nbytes();
  const std::size_t value_bytes = values_.nbytes();
  auto* id_out = static_cast<std::byte*>(ids.raw_data());
  auto* value_out = static_cast<std::byte*>(values.raw_data());
  std::copy_n(static_cast<const std::byte*>(ids_.raw_data()), id_bytes, id_out);
  std::copy_n(static_cast<const std::byte*>(other.ids_.raw_data()), other.ids_.nbytes(),
              id_out + id_bytes);
  std::copy_n(static_cast<const std::byte*>(values_.raw_data()), value_bytes, value_out);
  std::copy_n(static_cast<const std::byte*>(other.values_.raw_data()), other.values_.nbytes(),
              value_out + value_bytes);
  ids_ = std::move(ids);
  values_ = std::move(values);
  coalesced_ = false;
}

}  // namespace emb
