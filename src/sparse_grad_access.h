// Library-internal access to a SparseGrad: its own ids (which no caller can reach or change),
// and construction from freshly computed tensors without a copy.
#pragma once

#include <cstdint>

#include "emb/sparse_grad.h"

namespace emb::detail {

struct SparseGradAccess {
  /// The gradient's ids [nnz] int64, validated at construction and never exposed.
  static const Tensor& ids(const SparseGrad& g) { return g.ids_; }
  /// A SparseGrad over ids and values that no one else holds (results of the backward ops).
  static SparseGrad adopt(Tensor ids, Tensor values, std::int64_t num_rows,
                          bool coalesced = false) {
    return SparseGrad(SparseGrad::Adopt{}, std::move(ids), std::move(values), num_rows, coalesced);
  }
};

}  // namespace emb::detail
