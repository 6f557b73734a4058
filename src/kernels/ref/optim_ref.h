// Scalar reference twins of the optimizer row kernels (kernels/optim_rows.h): the readable
// definition of their results, operation by operation the arithmetic of the optimizers' own
// loops (the library is compiled without floating-point contraction: every a * b + c below rounds
// twice unless it is written as std::fma).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/optim_rows.h"

namespace emb::detail::ref {

/// c = the coalesced gradient row of group g (kernels/optim_rows.h), dim elements.
template <typename T>
void coalesced_row(const SparseRows& s, std::int64_t g, T* c) {
  const std::int64_t dim = s.dim;
  const auto* grad = static_cast<const T*>(s.grad);
  const auto* scale = static_cast<const T*>(s.scale);
  const std::int64_t count = s.starts[g + 1] - s.starts[g];
  const T freq = static_cast<T>(1.0 / static_cast<double>(count));
  for (std::int64_t e = s.starts[g]; e < s.starts[g + 1]; ++e) {
    const T* v = grad + s.src[e] * dim;
    for (std::int64_t d = 0; d < dim; ++d) {
      T x = v[d];
      if (scale) x = x * scale[e];  // the entry's own factor (per-sample weight, 1 / bag size)
      if (s.freq) x = x * freq;     // scale_grad_by_freq
      c[d] = e == s.starts[g] ? x : c[d] + x;
    }
  }
  if (s.maximize) {
    for (std::int64_t d = 0; d < dim; ++d) c[d] = -c[d];
  }
}

/// RowWiseAdagrad on one row r with gradient row c:
///   g = c (+ wd * θ[r]); sum[r] += (g[0]² + ... + g[dim-1]²) / dim (in order);
///   θ[r] -= lr / (sqrt(sum[r]) + eps) * g.
template <typename T>
void rowwise_adagrad_row(const T* c, std::int64_t dim, const RowWiseAdagradHyper& h, T* row,
                         T* sum_r, T* gbuf) {
  const T lr = static_cast<T>(h.lr);
  const T eps = static_cast<T>(h.eps);
  const T wd = static_cast<T>(h.weight_decay);
  const bool decay = h.weight_decay != 0.0;
  T sq = 0;
  for (std::int64_t d = 0; d < dim; ++d) {
    T x = c[d];
    if (decay) x = x + wd * row[d];
    gbuf[d] = x;
    sq = sq + x * x;
  }
  *sum_r = *sum_r + sq / static_cast<T>(dim);
  const T mult = lr / (std::sqrt(*sum_r) + eps);
  for (std::int64_t d = 0; d < dim; ++d) row[d] = row[d] - mult * gbuf[d];
}

/// Adagrad's sparse update of one row r with gradient row c, element by element:
///   sum[r] += c²; θ[r] = fma(c / (sqrt(sum[r]) + eps), -clr, θ[r]).
template <typename T>
void adagrad_row(const T* c, std::int64_t dim, const AdagradHyper& h, T* row, T* acc) {
  const T neg_clr = static_cast<T>(-h.clr);
  const T eps = static_cast<T>(h.eps);
  for (std::int64_t d = 0; d < dim; ++d) {
    acc[d] = acc[d] + c[d] * c[d];
    const T std_v = std::sqrt(acc[d]) + eps;
    row[d] = std::fma(c[d] / std_v, neg_clr, row[d]);
  }
}

template <typename T>
void rowwise_adagrad_rows_typed(const SparseRows& s, const RowWiseAdagradHyper& h, T* w, T* sum) {
  std::vector<T> c(static_cast<std::size_t>(s.dim)), gbuf(c.size());
  for (std::int64_t g = 0; g < s.num_groups; ++g) {
    coalesced_row(s, g, c.data());
    rowwise_adagrad_row(c.data(), s.dim, h, w + s.rows[g] * s.dim, sum + s.rows[g], gbuf.data());
  }
}

template <typename T>
void adagrad_rows_typed(const SparseRows& s, const AdagradHyper& h, T* w, T* sum) {
  std::vector<T> c(static_cast<std::size_t>(s.dim));
  for (std::int64_t g = 0; g < s.num_groups; ++g) {
    coalesced_row(s, g, c.data());
    adagrad_row(c.data(), s.dim, h, w + s.rows[g] * s.dim, sum + s.rows[g] * s.dim);
  }
}

/// SGD without momentum: θ[r] = fma(±v_e, -lr, θ[r]) for each entry e of the group, in order
/// (the entries are not coalesced first).
template <typename T>
void sgd_rows_typed(const SparseRows& s, const SgdHyper& h, T* w) {
  const T neg_lr = static_cast<T>(-h.lr);
  const auto* grad = static_cast<const T*>(s.grad);
  const auto* scale = static_cast<const T*>(s.scale);
  for (std::int64_t g = 0; g < s.num_groups; ++g) {
    T* row = w + s.rows[g] * s.dim;
    const T freq = static_cast<T>(1.0 / static_cast<double>(s.starts[g + 1] - s.starts[g]));
    for (std::int64_t e = s.starts[g]; e < s.starts[g + 1]; ++e) {
      const T* v = grad + s.src[e] * s.dim;
      for (std::int64_t d = 0; d < s.dim; ++d) {
        T x = v[d];
        if (scale) x = x * scale[e];
        if (s.freq) x = x * freq;
        if (s.maximize) x = -x;
        row[d] = std::fma(x, neg_lr, row[d]);
      }
    }
  }
}

// Type-erased entry points: the fast kernels' signatures.

inline void rowwise_adagrad_rows(const SparseRows& s, const RowWiseAdagradHyper& h, void* w,
                                 void* sum) {
  if (s.dtype == DType::kFloat64) {
    rowwise_adagrad_rows_typed(s, h, static_cast<double*>(w), static_cast<double*>(sum));
  } else {
    rowwise_adagrad_rows_typed(s, h, static_cast<float*>(w), static_cast<float*>(sum));
  }
}

inline void adagrad_rows(const SparseRows& s, const AdagradHyper& h, void* w, void* sum) {
  if (s.dtype == DType::kFloat64) {
    adagrad_rows_typed(s, h, static_cast<double*>(w), static_cast<double*>(sum));
  } else {
    adagrad_rows_typed(s, h, static_cast<float*>(w), static_cast<float*>(sum));
  }
}

inline void sgd_rows(const SparseRows& s, const SgdHyper& h, void* w) {
  if (s.dtype == DType::kFloat64) {
    sgd_rows_typed(s, h, static_cast<double*>(w));
  } else {
    sgd_rows_typed(s, h, static_cast<float*>(w));
  }
}

}  // namespace emb::detail::ref
