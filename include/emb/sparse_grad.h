// emb/sparse_grad.h — a row-sparse gradient: the PyTorch sparse COO gradient of an embedding.
//
// Row ids and value rows, in the order the backward produced them. Like PyTorch's sparse grad it
// is uncoalesced: an id may appear several times, and the rows with the same id add up.
//   ids [3, 1, 3], values [[a], [b], [c]]  ==  dense rows {1: b, 3: a + c}
#pragma once

#include <cstdint>

#include "emb/tensor.h"

namespace emb {

namespace detail {
struct SparseGradAccess;
}

class SparseGrad {
 public:
  /// An empty gradient (no rows) of a [num_rows, dim] table. Throws ValueError for a negative
  /// size and a dtype that is not floating.
  SparseGrad(std::int64_t num_rows, std::int64_t dim, DType dtype);
  /// ids [nnz] int64, values [nnz, dim]; each id in [0, num_rows). Throws ValueError/IndexError.
  /// The gradient keeps its own copies of ids and values: the ids it has checked cannot be
  /// changed afterwards through the caller's tensors (optimizers write at those rows).
  SparseGrad(const Tensor& ids, const Tensor& values, std::int64_t num_rows,
             bool coalesced = false);

  /// [nnz] int64: a copy of the ids (the gradient's own cannot be written from outside).
  Tensor indices() const { return ids_.clone(); }
  const Tensor& values() const { return values_; }  // [nnz, dim]
  std::int64_t nnz() const { return ids_.numel(); }
  std::int64_t num_rows() const { return num_rows_; }
  std::int64_t dim() const { return dim_; }
  DType dtype() const { return values_.dtype(); }
  /// PyTorch's is_coalesced(): true after coalesce(), and for a gradient of at most one row.
  bool is_coalesced() const { return coalesced_; }

  /// Sorted unique ids, rows with the same id summed in order of appearance (in the value
  /// dtype). torch.Tensor.coalesce() sums them in the order of its unstable sort: the same when
  /// there are at most 16 rows; beyond that, an id with 3 or more rows may differ by the rounding
  /// of a reordered sum (docs/PARITY.md).
  SparseGrad coalesce() const;
  /// The dense [num_rows, dim] gradient (the sum of the rows per id).
  Tensor to_dense() const;
  /// Appends other's rows after this one's (how PyTorch accumulates two sparse grads).
  /// Throws ValueError if the table shape or dtype differ.
  void append(const SparseGrad& other);

 private:
  friend struct detail::SparseGradAccess;
  struct Adopt {};
  // Takes ids and values without copying them (tensors no one else holds); validates as the
  // public constructor does.
  SparseGrad(Adopt, Tensor ids, Tensor values, std::int64_t num_rows, bool coalesced);

  Tensor ids_;
  Tensor values_;
  std::int64_t num_rows_;
  std::int64_t dim_;
  bool coalesced_;
};

}  // namespace emb
