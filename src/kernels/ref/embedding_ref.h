// Scalar reference kernels of the embedding lookup: the readable definition. Inputs are
// validated by the functional layer; kernels never throw.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "emb/dtype.h"

namespace emb::detail::ref {

/// Arithmetic type of an element type: float for Half/BFloat16, the type itself otherwise.
template <typename T>
using acc_t = std::conditional_t<std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>, float, T>;

/// Whether every ids[i], i < n, lies in [0, num_rows).
template <typename Index>
bool ids_in_range(const Index* ids, std::int64_t n, std::int64_t num_rows) {
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t k = ids[i];
    if (k < 0 || k >= num_rows) return false;
  }
  return true;
}

/// out[i] = table[ids[i]] for i < n, rows of row_bytes bytes.
template <typename Index>
void gather_rows(const std::byte* table, std::size_t row_bytes, const Index* ids, std::int64_t n,
                 std::byte* out) {
  for (std::int64_t i = 0; i < n; ++i) {
    std::memcpy(out + static_cast<std::size_t>(i) * row_bytes,
                table + static_cast<std::size_t>(ids[i]) * row_bytes, row_bytes);
  }
}

/// The p-norm of one row, computed as ATen's CPU reduction does, so that the renorm decision and
/// scale match PyTorch bit for bit. The kernel is chosen on the double norm_type, as PyTorch 2.x
/// chooses it (norm_kernel_tensor_iterator_impl keeps p as a double): exactly 2, 1, +-inf or 0
/// pick the special kernels; every other value takes the generic kernel, with p converted to the
/// accumulation type there (so 1e39 on a float32 row is the generic kernel with p = inf, not the
/// max kernel; PyTorch 1.13 narrowed p to float first and chose on that).
/// - p = 2, float32/bfloat16 (ATen's vectorized path): 8 float lanes of fused x*x + lane over
///   whole vectors (bfloat16: 16-element blocks), the lanes summed left to right, then the tail:
///   if it has 4 or more elements, 4 of them added as rounded squares, the rest fused; sqrt.
///   float64: sequential fused x*x + acc; sqrt. float16: each square and partial sum rounded.
/// - p = 1 sum |x|, inf max |x|, -inf min |x|, 0 count of x != 0 (sequential, in acc_t).
/// - otherwise (sum |x|^p)^(1/p), sequentially, p converted to acc_t (float for float32, double
///   for float64). 16-bit rows are reduced in their own type, as ATen 1.13 reduces them: p
///   (through float), 1/p and every partial sum are rounded to it (bfloat16 rounds each |x|^p
///   term too).
/// The result is rounded to T.
template <typename T>
double row_norm(const T* row, std::int64_t dim, double norm_type) {
  using A = acc_t<T>;
  constexpr bool kHalf = std::is_same_v<T, Half>;
  constexpr bool k16 = kHalf || std::is_same_v<T, BFloat16>;
  const auto round = [](A v) -> A { return k16 ? A(T(v)) : v; };
  A acc = 0;
  if (norm_type == 2.0) {
    std::int64_t d = 0;
    if constexpr (std::is_same_v<A, float> && !kHalf) {
      constexpr std::int64_t kLanes = 8;
      constexpr std::int64_t kBlock = k16 ? 2 * kLanes : kLanes;
      A lanes[kLanes] = {};
      for (; d + kBlock <= dim; d += kBlock) {
        for (std::int64_t b = 0; b < kBlock; b += kLanes) {
          for (std::int64_t l = 0; l < kLanes; ++l) {
            const A x = A(row[d + b + l]);
            lanes[l] = std::fma(x, x, lanes[l]);
          }
        }
      }
      acc = lanes[0];
      for (std::int64_t l = 1; l < kLanes; ++l) acc = acc + lanes[l];
      // The scalar tail as ATen's compiled loop runs it: a first group of 4 squared and added
      // one by one, then the rest fused.
      if (dim - d >= 4) {
        for (const std::int64_t end = d + 4; d < end; ++d) acc = acc + A(row[d]) * A(row[d]);
      }
      for (; d < dim; ++d) acc = std::fma(A(row[d]), A(row[d]), acc);
    } else if constexpr (kHalf) {
      for (; d < dim; ++d) acc = round(acc + round(A(row[d]) * A(row[d])));
    } else {  // float64
      for (; d < dim; ++d) acc = std::fma(row[d], row[d], acc);
    }
    return static_cast<double>(A(T(std::sqrt(acc))));
  }
  if (norm_type == 1.0) {
    for (std::int64_t d = 0; d < dim; ++d) acc = round(acc + std::abs(A(row[d])));
  } else if (std::isinf(norm_type)) {  // max |x| (p = inf) or min |x| (p = -inf); NaN propagates
    acc = norm_type > 0 ? A(0) : std::numeric_limits<A>::infinity();
    for (std::int64_t d = 0; d < dim; ++d) {
      const A a = std::abs(A(row[d]));
      if (std::isnan(a) || (norm_type > 0 ? a > acc : a < acc)) acc = a;
    }
  } else if (norm_type == 0.0) {
    for (std::int64_t d = 0; d < dim; ++d) acc = round(acc + (A(row[d]) == A(0) ? A(0) : A(1)));
  } else {
    // p may round to 0, 1, 2 or inf here (1e-50, 1 + 1e-10, 2 + 1e-10, 1e39 on a float32 row):
    // still the generic kernel, e.g. |x|^0 = 1 and 1/0 = inf, or |x|^inf and 1/inf = 0.
    const A p = k16 ? round(A(static_cast<float>(norm_type))) : static_cast<A>(norm_type);
    for (std::int64_t d = 0; d < dim; ++d) {
      A term = std::pow(std::abs(A(row[d])), p);
      if constexpr (k16 && !kHalf) term = round(term);
      acc = round(acc + term);
    }
    acc = std::pow(acc, round(A(1) / p));
  }
  return static_cast<double>(A(T(acc)));
}

/// For each id in sorted_unique_ids: if norm(table[id]) > max_norm (strictly), then
/// table[id] *= (T) (max_norm / (norm + 1e-7)), the scale computed in double, rounded to T.
template <typename T>
void renorm_rows(T* table, std::int64_t dim, const std::int64_t* sorted_unique_ids, std::int64_t n,
                 double max_norm, double norm_type) {
  using A = acc_t<T>;
  for (std::int64_t i = 0; i < n; ++i) {
    T* row = table + sorted_unique_ids[i] * dim;
    const double norm = row_norm(row, dim, norm_type);
    if (norm > max_norm) {
      // The double scale becomes a T scalar first (a 16-bit type may round it to inf).
      const A scale = A(T(static_cast<A>(max_norm / (norm + 1e-7))));
      for (std::int64_t d = 0; d < dim; ++d) row[d] = T(A(row[d]) * scale);
    }
  }
}

/// grad_weight[k] += scale_i * grad[i] for each position i in order, k = ids[i] != padding_idx,
/// scale_i = 1 / counts[k] when counts is given, else 1. Rounded as ATen's add with alpha:
/// float32/float64 fuse multiply and add (one rounding). 16-bit types take alpha rounded to
/// their type; bfloat16 fuses in float over whole 32-element chunks of the row and rounds
/// alpha * g and then the sum on the rest; float16 rounds twice everywhere.
/// grad_weight must hold zeros (or a previous gradient) on entry.
template <typename T, typename Index>
void embedding_dense_backward(const T* grad, const Index* ids, std::int64_t n, std::int64_t dim,
                              std::int64_t padding_idx, const std::int64_t* counts,
                              T* grad_weight) {
  constexpr std::int64_t kFusedChunk = 32;  // two 16-lane bfloat16 vectors
  const std::int64_t fused_end = std::is_same_v<T, BFloat16> ? dim - dim % kFusedChunk : 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t k = ids[i];
    if (k == padding_idx) continue;
    const double scale = counts ? 1.0 / static_cast<double>(counts[k]) : 1.0;
    const T* g = grad + i * dim;
    T* out = grad_weight + k * dim;
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      const T alpha = static_cast<T>(scale);
      for (std::int64_t d = 0; d < dim; ++d) out[d] = std::fma(alpha, g[d], out[d]);
    } else {
      const float alpha = static_cast<float>(T(static_cast<float>(scale)));
      std::int64_t d = 0;
      for (; d < fused_end; ++d) out[d] = T(std::fma(alpha, float(g[d]), float(out[d])));
      for (; d < dim; ++d) out[d] = T(float(out[d]) + float(T(alpha * float(g[d]))));
    }
  }
}

}  // namespace emb::detail::ref
