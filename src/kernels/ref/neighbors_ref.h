// Scalar reference kernels of exact cosine nearest neighbours: the readable definition the fast
// kernels (kernels/neighbors.cc) match bit for bit on every SIMD target and thread count.
//
// Dot products have a fixed summation order, independent of vector width: element d goes to
// partial sum d % 16 (a rounded product, then a rounded sum, in order of d), and the 16 partials
// are folded pairwise (p[j] += p[j + 8], then + 4, + 2, + 1).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace emb::detail::ref {

inline constexpr int kDotPartials = 16;

/// Folds the 16 partial sums in the fixed order.
inline float fold_partials(float* p) {
  for (int w = kDotPartials / 2; w >= 1; w /= 2) {
    for (int j = 0; j < w; ++j) p[j] = p[j] + p[j + w];
  }
  return p[0];
}

/// sum over d of a[d] * b[d] in the fixed order.
inline float dot16(const float* a, const float* b, std::int64_t dim) {
  float p[kDotPartials] = {};
  for (std::int64_t d = 0; d < dim; ++d) {
    const float prod = a[d] * b[d];
    p[d % kDotPartials] = p[d % kDotPartials] + prod;
  }
  return fold_partials(p);
}

/// 1 / sqrt(s) of a squared norm, 0 for 0 (an all-zero row is similar to nothing).
inline float inverse_norm(float squared) {
  return squared > 0.0f ? 1.0f / std::sqrt(squared) : 0.0f;
}

/// out[r] = inverse_norm(dot16(row r, row r)).
///   table [rows, dim] float32 -> out [rows]
inline void row_inverse_norms(const float* table, std::int64_t rows, std::int64_t dim, float* out) {
  for (std::int64_t r = 0; r < rows; ++r) {
    out[r] = inverse_norm(dot16(table + r * dim, table + r * dim, dim));
  }
}

/// Whether (score a, row ia) ranks before (score b, row ib): higher score, then lower row.
inline bool ranks_before(float a, std::int64_t ia, float b, std::int64_t ib) {
  return a > b || (a == b && ia < ib);
}

/// The k best rows by score[r] = dot16(row r, query) * inv_norms[r] (query already unit
/// length), best first, ties to the lower row; row `exclude` and NaN scores are left out.
/// Writes found = min(k, candidates) entries to ids and scores.
///   table [rows, dim], inv_norms [rows], query [dim] -> ids [k], scores [k]
inline void cosine_top_k(const float* table, std::int64_t rows, std::int64_t dim,
                         const float* inv_norms, const float* query, std::int64_t k,
                         std::int64_t exclude, std::int64_t* ids, float* scores,
                         std::int64_t* found) {
  std::vector<std::pair<float, std::int64_t>> all;
  all.reserve(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    if (r == exclude) continue;
    const float s = dot16(table + r * dim, query, dim) * inv_norms[r];
    if (std::isnan(s)) continue;
    all.emplace_back(s, r);
  }
  const auto n = std::min<std::int64_t>(k, static_cast<std::int64_t>(all.size()));
  std::partial_sort(all.begin(), all.begin() + n, all.end(), [](const auto& a, const auto& b) {
    return ranks_before(a.first, a.second, b.first, b.second);
  });
  for (std::int64_t i = 0; i < n; ++i) {
    scores[i] = all[static_cast<std::size_t>(i)].first;
    ids[i] = all[static_cast<std::size_t>(i)].second;
  }
  *found = n;
}

}  // namespace emb::detail::ref
