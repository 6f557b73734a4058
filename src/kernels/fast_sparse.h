// Fast kernels of the sparse gradient and of the renorm (see kernels/fast.h for the rules: each
// has a twin in kernels/ref/ with the same signature and the same result bit for bit, whatever
// the SIMD target and the thread count).
#pragma once

#include <cstdint>
#include <vector>

#include "emb/dtype.h"
#include "kernels/ref/sparse_ref.h"

namespace emb::detail::fast {

using ref::RowGroups;
using ref::SparseRowsSource;

// ---- Type-erased arguments ----------------------------------------------------------------------

struct SparseRowsArgs {
  DType dtype;
  bool ids64;
  const void* grad;
  std::int64_t dim;
  const std::int64_t* src_row;
  const void* psw;
  const std::int64_t* bag_size;
  const std::int64_t* counts;
  const void* ids;
  const std::int64_t* order;
  const std::int64_t* starts;
  std::int64_t groups;
  std::int64_t* out_ids;
  void* out_values;
};

struct RenormArgs {
  DType dtype;
  void* table;
  std::int64_t dim;
  const std::int64_t* rows;
  std::int64_t n;
  double max_norm;
  double norm_type;
};

/// The renorm of a list of ids (validated, int32 or int64, duplicates allowed).
struct RenormIdsArgs {
  DType dtype;
  void* table;
  std::int64_t dim;
  std::int64_t num_rows;
  const void* ids;
  bool ids64;
  std::int64_t n;
  double max_norm;
  double norm_type;
};

void sparse_grad_rows_any(const SparseRowsArgs& a);
void renorm_rows_any(const RenormArgs& a);
void renorm_ids_any(const RenormIdsArgs& a);

// ---- Typed entry points: the ref twins' signatures ----------------------------------------------

/// ref::group_rows_by_id: a radix sort of (id, position) keys (no SIMD, one thread).
RowGroups group_rows_by_id(const std::int32_t* ids, std::int64_t n, std::int64_t padding_idx,
                           std::int64_t num_rows);
RowGroups group_rows_by_id(const std::int64_t* ids, std::int64_t n, std::int64_t padding_idx,
                           std::int64_t num_rows);

/// ref::sorted_unique_ids: a radix sort (fewer than 64 ids: the twin's own sort).
std::vector<std::int64_t> sorted_unique_ids(const std::int32_t* ids, std::int64_t n,
                                            std::int64_t num_rows);
std::vector<std::int64_t> sorted_unique_ids(const std::int64_t* ids, std::int64_t n,
                                            std::int64_t num_rows);

/// ref::sparse_grad_rows.
template <typename T, typename Index>
void sparse_grad_rows(const SparseRowsSource<T>& s, const Index* ids, const std::int64_t* order,
                      const std::int64_t* starts, std::int64_t groups, std::int64_t* out_ids,
                      T* out_values) {
  sparse_grad_rows_any({dtype_of<T>, sizeof(Index) == 8, s.grad, s.dim, s.src_row, s.psw,
                        s.bag_size, s.counts, ids, order, starts, groups, out_ids, out_values});
}

/// ref::renorm_rows (the rows distinct).
template <typename T>
void renorm_rows(T* table, std::int64_t dim, const std::int64_t* sorted_unique_ids, std::int64_t n,
                 double max_norm, double norm_type) {
  renorm_rows_any({dtype_of<T>, table, dim, sorted_unique_ids, n, max_norm, norm_type});
}

/// ref::renorm_ids: each distinct id's row renormed once, in ascending order. Where a bitmap of
/// the table's rows is no larger than the ids, threads own ranges of rows, mark the ids of their
/// range in the bitmap and renorm the marked rows (no sort, no list of the distinct ids); else
/// renorm_rows over sorted_unique_ids.
template <typename T, typename Index>
void renorm_ids(T* table, std::int64_t dim, const Index* ids, std::int64_t n, std::int64_t num_rows,
                double max_norm, double norm_type) {
  renorm_ids_any(
      {dtype_of<T>, table, dim, num_rows, ids, sizeof(Index) == 8, n, max_norm, norm_type});
}

}  // namespace emb::detail::fast
