// Scalar reference kernels of EmbeddingBag: the readable definition. Inputs are validated by the
// functional layer; kernels never throw.
//
// Every kernel sees the bags as B + 1 int64 bounds: bag b is positions [bounds[b], bounds[b+1]),
// bounds[0] = 0, bounds[B] = n, non-decreasing. offsets [0, 2, 2] over 5 ids -> [0, 2, 2, 5].
// T is the weight's element type, Index the ids' (int32_t or int64_t), A = acc_t<T>.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "emb/dtype.h"
#include "kernels/ref/embedding_ref.h"

namespace emb::detail::ref {

/// out[b] = sum over non-padding positions i of bag b, in order, of w_i * table[ids[i]], in A,
/// rounded once to T; empty bags give 0. With per_sample_weights the multiply-add is rounded as
/// ATen's CPU kernels round it:
///   no padding_idx, float32 (ATen's fast path):   acc = fma(table[ids[i]], psw[i], acc)
///   otherwise (float64; any padding_idx):         acc = acc + table[ids[i]] * psw[i]
/// (for float16 and bfloat16 both forms agree: the product of two 16-bit values is exact in
/// float). Without per_sample_weights: acc = acc + table[ids[i]].
///   table [*, dim], ids [n], bounds [B + 1], psw [n] or null -> out [B, dim]
template <typename T, typename Index>
void bag_sum(const T* table, std::int64_t dim, const Index* ids, const std::int64_t* bounds,
             std::int64_t num_bags, std::int64_t padding_idx, const T* psw, T* out) {
  using A = acc_t<T>;
  const bool fused = !std::is_same_v<T, double> && padding_idx < 0;
  for (std::int64_t b = 0; b < num_bags; ++b) {
    T* o = out + b * dim;
    for (std::int64_t d = 0; d < dim; ++d) {
      A acc = 0;
      for (std::int64_t i = bounds[b]; i < bounds[b + 1]; ++i) {
        if (ids[i] == padding_idx) continue;
        const A w = A(table[static_cast<std::int64_t>(ids[i]) * dim + d]);
        if (!psw) {
          acc = acc + w;
        } else if (fused) {
          acc = std::fma(w, A(psw[i]), acc);
        } else {
          acc = acc + w * A(psw[i]);
        }
      }
      o[d] = T(acc);
    }
  }
}

/// Mode mean after bag_sum: out[b] = T(A(out[b]) / A(bag_size[b])) where bag_size[b] > 0
/// (the rounded sum, then a true division, as ATen divides its output by the bag sizes).
///   out [B, dim], bag_size [B]
template <typename T>
void bag_divide_by_size(T* out, std::int64_t dim, const std::int64_t* bag_size,
                        std::int64_t num_bags) {
  using A = acc_t<T>;
  for (std::int64_t b = 0; b < num_bags; ++b) {
    if (bag_size[b] == 0) continue;
    const A n = A(T(static_cast<A>(bag_size[b])));
    for (std::int64_t d = 0; d < dim; ++d) out[b * dim + d] = T(A(out[b * dim + d]) / n);
  }
}

/// out[b][d] = table[k][d] for the first non-padding position of bag b whose value is strictly
/// larger than every earlier one (ties: the first wins; a NaN wins only when it comes first);
/// max_indices[b][d] = that k. Empty and all-padding bags: 0 and 0. max_indices may be null
/// (only out is written).
///   table [*, dim], ids [n], bounds [B + 1] -> out [B, dim], max_indices [B, dim] | null
template <typename T, typename Index>
void bag_max(const T* table, std::int64_t dim, const Index* ids, const std::int64_t* bounds,
             std::int64_t num_bags, std::int64_t padding_idx, T* out, std::int64_t* max_indices) {
  using A = acc_t<T>;
  for (std::int64_t b = 0; b < num_bags; ++b) {
    for (std::int64_t d = 0; d < dim; ++d) {
      bool first = true;
      A best = 0;
      std::int64_t best_k = 0;
      for (std::int64_t i = bounds[b]; i < bounds[b + 1]; ++i) {
        const std::int64_t k = ids[i];
        if (k == padding_idx) continue;
        const A v = A(table[k * dim + d]);
        if (first || v > best) {
          best = v;
          best_k = k;
        }
        first = false;
      }
      out[b * dim + d] = T(best);
      if (max_indices) max_indices[b * dim + d] = best_k;
    }
  }
}

/// Dense backward of modes sum and mean. For each position i in input order with
/// k = ids[i] != padding_idx, b = offset2bag[i]:
///   s = psw ? psw[i] : 1;  s /= counts[k] (if counts);  s /= bag_size[b] (if bag_size, > 0)
///   grad_weight[k] += T(s) * grad[b]
/// s in double; float/double fuse the multiply-add, 16-bit types round the product, then the sum
/// (as ATen's axpy). grad_weight holds zeros (or a previous gradient) on entry.
///   grad [B, dim], ids [n], offset2bag [n], psw [n] | null, counts [num] | null,
///   bag_size [B] | null -> grad_weight [num, dim]
template <typename T, typename Index>
void bag_dense_backward_sum(const T* grad, std::int64_t dim, const Index* ids,
                            const std::int64_t* offset2bag, std::int64_t n,
                            std::int64_t padding_idx, const T* psw, const std::int64_t* counts,
                            const std::int64_t* bag_size, T* grad_weight) {
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t k = ids[i];
    if (k == padding_idx) continue;
    const std::int64_t b = offset2bag[i];
    double s = psw ? static_cast<double>(acc_t<T>(psw[i])) : 1.0;
    if (counts) s /= static_cast<double>(counts[k]);
    if (bag_size && bag_size[b] != 0) s /= static_cast<double>(bag_size[b]);
    const T* g = grad + b * dim;
    T* out = grad_weight + k * dim;
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      const T alpha = static_cast<T>(s);
      for (std::int64_t d = 0; d < dim; ++d) out[d] = std::fma(alpha, g[d], out[d]);
    } else {
      const float alpha = static_cast<float>(T(static_cast<float>(s)));
      for (std::int64_t d = 0; d < dim; ++d) {
        const T term = T(alpha * static_cast<float>(g[d]));
        out[d] = T(static_cast<float>(out[d]) + static_cast<float>(term));
      }
    }
  }
}

/// Dense backward of mode max: for each bag b with bag_size[b] > 0, in order, and each d:
///   grad_weight[max_indices[b][d]][d] += grad[b][d]   (one rounding to T per addition)
///   grad [B, dim], max_indices [B, dim], bag_size [B] -> grad_weight [num, dim]
template <typename T>
void bag_dense_backward_max(const T* grad, std::int64_t dim, const std::int64_t* max_indices,
                            const std::int64_t* bag_size, std::int64_t num_bags, T* grad_weight) {
  using A = acc_t<T>;
  for (std::int64_t b = 0; b < num_bags; ++b) {
    if (bag_size[b] == 0) continue;
    for (std::int64_t d = 0; d < dim; ++d) {
      T& out = grad_weight[max_indices[b * dim + d] * dim + d];
      out = T(A(out) + A(grad[b * dim + d]));
    }
  }
}

/// Gradient of per_sample_weights: out[i] = dot(grad[offset2bag[i]], table[ids[i]]), 0 where
/// ids[i] == padding_idx. The dot product is ATen's: BLAS sdot/ddot for float32/float64 (the
/// reference BLAS adds the rounded products left to right, unfused, in the element type):
///   acc = acc + g[d] * w[d]                          (float32, float64)
/// float16 in float16 arithmetic (ATen's generic dot), each product and each sum rounded to half:
///   acc = half(acc + half(g[d] * w[d]))
/// bfloat16 (no 1.13 oracle) as float32, rounded once at the end.
///   grad [B, dim], table [*, dim], ids [n], offset2bag [n] -> out [n]
template <typename T, typename Index>
void bag_per_sample_weights_backward(const T* grad, const T* table, std::int64_t dim,
                                     const Index* ids, const std::int64_t* offset2bag,
                                     std::int64_t n, std::int64_t padding_idx, T* out) {
  using A = acc_t<T>;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t k = ids[i];
    A acc = 0;
    if (k != padding_idx) {
      const T* g = grad + offset2bag[i] * dim;
      const T* w = table + k * dim;
      for (std::int64_t d = 0; d < dim; ++d) {
        if constexpr (std::is_same_v<T, Half>) {
          acc = A(T(acc + A(T(A(g[d]) * A(w[d])))));
        } else {
          acc = acc + A(g[d]) * A(w[d]);
        }
      }
    }
    out[i] = T(acc);
  }
}

}  // namespace emb::detail::ref
