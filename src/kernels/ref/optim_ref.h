// Scalar reference twins of the optimizer row kernels (kernels/optim_rows.h): the readable
// definition of their results, operation by operation the arithmetic of the optimizers' own
// loops (the library is compiled without floating-point contraction: every a * b + c below rounds
// twice unless it is written as std::fma).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
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

/// Adam's update of n consecutive elements (a whole dense parameter, or one row), maximize as
/// given (the lazy rows pass it false: their gradient is negated when coalesced).
template <typename T>
void adam_elements(T* w, const T* grad, T* m, T* v, T* vmax, std::int64_t n, const AdamHyper& h,
                   bool maximize) {
  const T wd = static_cast<T>(h.wd), decay = static_cast<T>(h.decay);
  const T beta1 = static_cast<T>(h.beta1), omb1 = static_cast<T>(h.one_minus_beta1);
  const T beta2 = static_cast<T>(h.beta2), omb2 = static_cast<T>(h.one_minus_beta2);
  const T bc2_sqrt = static_cast<T>(h.bc2_sqrt), eps = static_cast<T>(h.eps);
  const T neg_step = static_cast<T>(h.neg_step_size);
  for (std::int64_t e = 0; e < n; ++e) {
    T g = maximize ? -grad[e] : grad[e];
    if (h.decoupled) w[e] = w[e] * decay;        // θ *= 1 - lr * wd
    if (h.l2) g = std::fma(w[e], wd, g);         // g += wd * θ
    m[e] = std::fma(g, omb1, m[e] * beta1);      // m = β1 m + (1 - β1) g
    v[e] = std::fma(omb2 * g, g, v[e] * beta2);  // v = β2 v + (1 - β2) g²
    T second = v[e];
    if (h.amsgrad) {  // torch.maximum: NaN if either is NaN
      const T a = vmax[e], b = v[e];
      second = vmax[e] =
          (std::isnan(a) || std::isnan(b)) ? std::numeric_limits<T>::quiet_NaN() : (a < b ? b : a);
    }
    const T denom = std::sqrt(second) / bc2_sqrt + eps;
    w[e] = w[e] + (neg_step * m[e]) / denom;  // θ.addcdiv_(m, denom, -step_size)
  }
}

template <typename T>
void adam_rows_typed(const SparseRows& s, const AdamHyper& h, T* w, T* m, T* v, T* vmax) {
  std::vector<T> c(static_cast<std::size_t>(s.dim));
  for (std::int64_t g = 0; g < s.num_groups; ++g) {
    coalesced_row(s, g, c.data());
    const std::int64_t off = s.rows[g] * s.dim;
    adam_elements(w + off, c.data(), m + off, v + off, vmax ? vmax + off : nullptr, s.dim, h,
                  false);
  }
}

/// SparseAdam on one row with gradient row c (PyTorch's sparse_adam, operation by operation).
template <typename T>
void sparse_adam_row(const T* c, std::int64_t dim, const SparseAdamHyper& h, T* w, T* m, T* s) {
  const T omb1 = static_cast<T>(h.one_minus_beta1), omb2 = static_cast<T>(h.one_minus_beta2);
  const T eps = static_cast<T>(h.eps), neg_step = static_cast<T>(h.neg_step_size);
  for (std::int64_t d = 0; d < dim; ++d) {
    const T m_old = m[d];
    const T dm = (c[d] - m_old) * omb1;  // Δm = (v - m_old)(1 - β1)
    m[d] = m_old + dm;
    const T s_old = s[d];
    const T ds = (c[d] * c[d] - s_old) * omb2;  // Δs = (v² - s_old)(1 - β2)
    s[d] = s_old + ds;
    const T numer = dm + m_old;
    const T denom = std::sqrt(ds + s_old) + eps;
    w[d] = w[d] + (numer / denom) * neg_step;  // θ[r] += -step_size * numer / denom
  }
}

template <typename T>
void sparse_adam_rows_typed(const SparseRows& s, const SparseAdamHyper& h, T* w, T* m, T* sq) {
  std::vector<T> c(static_cast<std::size_t>(s.dim));
  for (std::int64_t g = 0; g < s.num_groups; ++g) {
    coalesced_row(s, g, c.data());
    const std::int64_t off = s.rows[g] * s.dim;
    sparse_adam_row(c.data(), s.dim, h, w + off, m + off, sq + off);
  }
}

/// Adagrad's dense element update.
template <typename T>
void adagrad_dense_typed(const AdagradDenseHyper& h, std::int64_t n, const T* gp, T* w, T* sum) {
  const T neg_clr = static_cast<T>(-h.clr);
  const T eps = static_cast<T>(h.eps);
  const T wd = static_cast<T>(h.weight_decay);
  const bool decay = h.weight_decay != 0.0;
  for (std::int64_t k = 0; k < n; ++k) {
    T g = h.maximize ? -gp[k] : gp[k];
    if (decay) g = std::fma(w[k], wd, g);    // g.add_(θ, alpha=wd)
    sum[k] = std::fma(T(1) * g, g, sum[k]);  // sum.addcmul_(g, g, value=1)
    const T std_v = std::sqrt(sum[k]) + eps;
    w[k] = w[k] + (neg_clr * g) / std_v;  // θ.addcdiv_(g, std, value=-clr)
  }
}

/// RowWiseAdagrad's dense update of rows [lo, hi): each row negated first when maximize.
template <typename T>
void rowwise_adagrad_dense_typed(const RowWiseAdagradHyper& h, bool maximize, std::int64_t lo,
                                 std::int64_t hi, std::int64_t dim, const T* grad, T* w, T* sum) {
  std::vector<T> g(static_cast<std::size_t>(dim));
  for (std::int64_t r = lo; r < hi; ++r) {
    const T* c = grad + r * dim;
    if (maximize) {
      for (std::int64_t d = 0; d < dim; ++d) g[static_cast<std::size_t>(d)] = -c[d];
      c = g.data();
    }
    rowwise_adagrad_row(c, dim, h, w + r * dim, sum + r, g.data());
  }
}

/// SGD's element update over n elements:
///   d = ±g (+ wd θ); buf = first ? d : fma(d, 1 - dampening, μ buf);
///   d = nesterov ? fma(buf, μ, d) : buf; θ = fma(d, -lr, θ).
/// grad null reads as zeros (a held momentum row the gradient missed: buf = μ buf, no addition);
/// buf null means no momentum; scale_buf false leaves out the μ (a row the buffer did not hold:
/// buf = fma(d, 1 - dampening, buf)).
template <typename T>
void sgd_elements(const SgdDenseHyper& h, std::int64_t n, const T* grad, T* w, T* buf,
                  bool scale_buf) {
  const T wd = static_cast<T>(h.weight_decay);
  const T mu = static_cast<T>(h.momentum);
  const T one_minus_damp = static_cast<T>(1.0 - h.dampening);
  const T neg_lr = static_cast<T>(-h.lr);
  const bool decay = h.weight_decay != 0.0;
  for (std::int64_t k = 0; k < n; ++k) {
    T d = grad ? (h.maximize ? -grad[k] : grad[k]) : T(0);
    if (decay) d = std::fma(w[k], wd, d);
    if (buf != nullptr) {
      if (h.first) {
        buf[k] = d;
      } else {
        const T b = scale_buf ? buf[k] * mu : buf[k];
        buf[k] = grad ? std::fma(d, one_minus_damp, b) : b;
      }
      d = h.nesterov ? std::fma(buf[k], mu, d) : buf[k];
    }
    w[k] = std::fma(d, neg_lr, w[k]);
  }
}

template <typename T>
void sgd_dense_typed(const SgdDenseHyper& h, std::int64_t n, const T* gp, T* w, T* buf) {
  sgd_elements(h, n, gp, w, buf, true);
}

/// SGD with momentum over a row-sparse buffer: slot s updates its buffer row and table row
/// rows[s] with gradient row grad_of_slot[s] (or none); maximize and weight decay left out (the
/// rows come negated; sparse SGD has no weight decay).
template <typename T>
void sgd_momentum_rows_typed(const SgdMomentumRows& m, const SgdDenseHyper& h, T* w, T* buf) {
  SgdDenseHyper k = h;
  k.maximize = false;
  k.weight_decay = 0.0;
  const auto* values = static_cast<const T*>(m.values);
  for (std::int64_t s = 0; s < m.used; ++s) {
    const std::int64_t j = m.grad_of_slot[s];
    sgd_elements(k, m.dim, j >= 0 ? values + j * m.dim : nullptr, w + m.rows[s] * m.dim,
                 buf + s * m.dim, s < m.old_used);
  }
}

// Type-erased entry points: the fast kernels' signatures.

inline void rowwise_adagrad_dense(DType dtype, const RowWiseAdagradHyper& h, bool maximize,
                                  std::int64_t num_rows, std::int64_t dim, const void* grad,
                                  void* w, void* sum) {
  if (dtype == DType::kFloat64) {
    rowwise_adagrad_dense_typed(h, maximize, 0, num_rows, dim, static_cast<const double*>(grad),
                                static_cast<double*>(w), static_cast<double*>(sum));
  } else {
    rowwise_adagrad_dense_typed(h, maximize, 0, num_rows, dim, static_cast<const float*>(grad),
                                static_cast<float*>(w), static_cast<float*>(sum));
  }
}

inline void sgd_dense(DType dtype, const SgdDenseHyper& h, std::int64_t n, const void* grad,
                      void* w, void* buf) {
  if (dtype == DType::kFloat64) {
    sgd_dense_typed(h, n, static_cast<const double*>(grad), static_cast<double*>(w),
                    static_cast<double*>(buf));
  } else {
    sgd_dense_typed(h, n, static_cast<const float*>(grad), static_cast<float*>(w),
                    static_cast<float*>(buf));
  }
}

inline void sgd_momentum_rows(const SgdMomentumRows& m, const SgdDenseHyper& h, void* w,
                              void* buf) {
  if (m.dtype == DType::kFloat64) {
    sgd_momentum_rows_typed(m, h, static_cast<double*>(w), static_cast<double*>(buf));
  } else {
    sgd_momentum_rows_typed(m, h, static_cast<float*>(w), static_cast<float*>(buf));
  }
}

inline void adam_rows(const SparseRows& s, const AdamHyper& h, void* w, void* m, void* v,
                      void* vmax) {
  if (s.dtype == DType::kFloat64) {
    adam_rows_typed(s, h, static_cast<double*>(w), static_cast<double*>(m), static_cast<double*>(v),
                    static_cast<double*>(vmax));
  } else {
    adam_rows_typed(s, h, static_cast<float*>(w), static_cast<float*>(m), static_cast<float*>(v),
                    static_cast<float*>(vmax));
  }
}

inline void sparse_adam_rows(const SparseRows& s, const SparseAdamHyper& h, void* w, void* m,
                             void* sq) {
  if (s.dtype == DType::kFloat64) {
    sparse_adam_rows_typed(s, h, static_cast<double*>(w), static_cast<double*>(m),
                           static_cast<double*>(sq));
  } else {
    sparse_adam_rows_typed(s, h, static_cast<float*>(w), static_cast<float*>(m),
                           static_cast<float*>(sq));
  }
}

inline void adam_dense(DType dtype, const AdamHyper& h, std::int64_t n, const void* grad, void* w,
                       void* m, void* v, void* vmax) {
  if (dtype == DType::kFloat64) {
    adam_elements(static_cast<double*>(w), static_cast<const double*>(grad),
                  static_cast<double*>(m), static_cast<double*>(v), static_cast<double*>(vmax), n,
                  h, h.maximize);
  } else {
    adam_elements(static_cast<float*>(w), static_cast<const float*>(grad), static_cast<float*>(m),
                  static_cast<float*>(v), static_cast<float*>(vmax), n, h, h.maximize);
  }
}

inline void adagrad_dense(DType dtype, const AdagradDenseHyper& h, std::int64_t n, const void* grad,
                          void* w, void* sum) {
  if (dtype == DType::kFloat64) {
    adagrad_dense_typed(h, n, static_cast<const double*>(grad), static_cast<double*>(w),
                        static_cast<double*>(sum));
  } else {
    adagrad_dense_typed(h, n, static_cast<const float*>(grad), static_cast<float*>(w),
                        static_cast<float*>(sum));
  }
}

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
