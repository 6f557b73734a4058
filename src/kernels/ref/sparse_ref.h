// Scalar reference kernels of the sparse gradient (the backward with sparse=true, and
// SparseGrad::coalesce) and of the renorm's row set: the readable definition. Inputs are
// validated by the caller; kernels never throw (but may throw std::bad_alloc).
//
// T is the gradient's element type, Index the ids' (int32_t or int64_t), A = acc_t<T>.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "emb/dtype.h"
#include "kernels/ref/embedding_ref.h"

namespace emb::detail::ref {

/// Rows of a sparse gradient grouped by id: `order` lists the positions i < n whose id is not
/// padding_idx, stably sorted by id (equal ids keep their positions' order); group g is
/// order[starts[g] .. starts[g + 1]), the positions of one id. ids < num_rows.
///   ids [3, 1, 3, 0], padding_idx -1 -> order [3, 1, 0, 2], starts [0, 1, 2, 4]
struct RowGroups {
  std::vector<std::int64_t> order;
  std::vector<std::int64_t> starts;  // [groups + 1]
  std::int64_t groups() const { return static_cast<std::int64_t>(starts.size()) - 1; }
};

template <typename Index>
RowGroups group_rows_by_id(const Index* ids, std::int64_t n, std::int64_t padding_idx,
                           std::int64_t /*num_rows*/) {
  RowGroups r;
  for (std::int64_t i = 0; i < n; ++i) {
    if (ids[i] != padding_idx) r.order.push_back(i);
  }
  std::stable_sort(r.order.begin(), r.order.end(),
                   [&](std::int64_t a, std::int64_t b) { return ids[a] < ids[b]; });
  r.starts.push_back(0);
  for (std::size_t j = 1; j <= r.order.size(); ++j) {
    if (j == r.order.size() || ids[r.order[j]] != ids[r.order[j - 1]]) {
      r.starts.push_back(static_cast<std::int64_t>(j));
    }
  }
  return r;
}

/// The sorted distinct ids: [2, 0, 2, 1] -> [0, 1, 2]. ids < num_rows.
template <typename Index>
std::vector<std::int64_t> sorted_unique_ids(const Index* ids, std::int64_t n,
                                            std::int64_t /*num_rows*/) {
  std::vector<std::int64_t> out(ids, ids + n);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

/// embedding_renorm_ on validated ids: renorm_rows over the distinct ids, in ascending order.
template <typename T, typename Index>
void renorm_ids(T* table, std::int64_t dim, const Index* ids, std::int64_t n, std::int64_t num_rows,
                double max_norm, double norm_type) {
  const std::vector<std::int64_t> rows = sorted_unique_ids(ids, n, num_rows);
  renorm_rows(table, dim, rows.data(), static_cast<std::int64_t>(rows.size()), max_norm, norm_type);
}

/// The value row of position i of a sparse gradient: v = grad[src(i)] (src(i) = src_row[i], or i
/// without src_row), then each factor that applies, every product rounded to T:
///   bag_size (EmbeddingBag mode mean): v = T(A(v) * A(T(A(1) / A(T(A(bag_size[src(i)]))))))
///   psw (per_sample_weights):           v = T(A(v) * A(psw[i]))
///   counts (scale_grad_by_freq):        v = T(A(v) * A(T(A(1.0 / counts[i]))))
/// (bag_size and psw never come together; with neither, v is grad's row, bit for bit.)
template <typename T>
struct SparseRowsSource {
  const T* grad;
  std::int64_t dim;
  const std::int64_t* src_row;   // [n] or null
  const T* psw;                  // [n] or null
  const std::int64_t* bag_size;  // [bags] or null
  const std::int64_t* counts;    // [n] or null
};

/// Writes group g of the positions as one row: out_ids[g] = the group's id (out_ids null: no ids
/// written, the caller has them), out_values[g] = the
/// first position's value row, then out = T(A(out) + A(v)) for the group's other positions in
/// order (SparseGrad::coalesce's sum). Group g is order[starts[g] .. starts[g + 1]); order null:
/// position j is j; starts null: group g is the one position g (an uncoalesced copy).
///   out_ids [groups], out_values [groups, dim]
template <typename T, typename Index>
void sparse_grad_rows(const SparseRowsSource<T>& s, const Index* ids, const std::int64_t* order,
                      const std::int64_t* starts, std::int64_t groups, std::int64_t* out_ids,
                      T* out_values) {
  using A = acc_t<T>;
  const std::int64_t dim = s.dim;
  std::vector<T> v(static_cast<std::size_t>(dim));
  for (std::int64_t g = 0; g < groups; ++g) {
    const std::int64_t begin = starts ? starts[g] : g;
    const std::int64_t end = starts ? starts[g + 1] : g + 1;
    T* out = out_values + g * dim;
    for (std::int64_t j = begin; j < end; ++j) {
      const std::int64_t i = order ? order[j] : j;
      const std::int64_t src = s.src_row ? s.src_row[i] : i;
      const T* row = s.grad + src * dim;
      std::copy(row, row + dim, v.begin());
      if (s.bag_size) {
        const A scale = A(T(A(1) / A(T(static_cast<A>(s.bag_size[src])))));
        for (auto& x : v) x = T(A(x) * scale);
      } else if (s.psw) {
        const A scale = A(s.psw[i]);
        for (auto& x : v) x = T(A(x) * scale);
      }
      if (s.counts) {
        const A alpha = static_cast<A>(T(static_cast<A>(1.0 / static_cast<double>(s.counts[i]))));
        for (auto& x : v) x = T(A(x) * alpha);
      }
      if (j == begin) {
        if (out_ids) out_ids[g] = static_cast<std::int64_t>(ids[i]);
        std::copy(v.begin(), v.end(), out);
      } else {
        for (std::int64_t d = 0; d < dim; ++d) out[d] = T(A(out[d]) + A(v[d]));
      }
    }
  }
}

}  // namespace emb::detail::ref
