// Fast optimizer row updates over a grouped row-sparse gradient (kernels/optim_rows.h): threads
// own contiguous ranges of groups (distinct rows), vectors run across a row's elements, so every
// element sees exactly its twin's operations (kernels/ref/optim_ref.h) in the same order. The
// table rows of the groups a few ahead are prefetched: a step on a big table waits on memory.
//
// RowWiseAdagrad's row sum of squares is one chain of additions in element order (the
// definition), so it stays scalar; when the gradient rows are used unscaled and unchanged (one
// entry per row, no weight decay: the usual bag-sum step), each grad row's sum is computed once
// and shared by every table row it lands on (a bag of 20 ids: 20 rows, one sum).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/optim_rows.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/optim_rows.h"
#include "kernels/parallel.h"
#include "kernels/ref/optim_ref.h"
#include "kernels/simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace emb::detail::HWY_NAMESPACE {

// How group g's entries turn into its coalesced gradient row.
template <typename T>
struct Groups {
  const SparseRows& s;
  const T* grad;
  const T* scale;

  explicit Groups(const SparseRows& rows)
      : s(rows), grad(static_cast<const T*>(rows.grad)), scale(static_cast<const T*>(rows.scale)) {}

  std::int64_t count(std::int64_t g) const { return s.starts[g + 1] - s.starts[g]; }
  // Whether group g's gradient is its one grad row, unscaled (maybe negated).
  bool plain(std::int64_t g) const { return count(g) == 1 && !scale && !s.freq; }

  // The coalesced row of group g: the grad row itself when it needs no arithmetic, else computed
  // into buf.
  const T* row(std::int64_t g, T* buf) const {
    const std::int64_t dim = s.dim;
    if (plain(g) && !s.maximize) return grad + s.src[s.starts[g]] * dim;
    const hn::ScalableTag<T> d;
    const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
    const T f = static_cast<T>(1.0 / static_cast<double>(count(g)));
    const auto vf = hn::Set(d, f);
    for (std::int64_t e = s.starts[g]; e < s.starts[g + 1]; ++e) {
      const T* v = grad + s.src[e] * dim;
      const bool first = e == s.starts[g];
      const T sc = scale ? scale[e] : T(1);
      const auto vs = hn::Set(d, sc);
      std::int64_t c = 0;
      for (; c + lanes <= dim; c += lanes) {
        auto x = hn::LoadU(d, v + c);
        if (scale) x = hn::Mul(x, vs);  // x * scale[e]
        if (s.freq) x = hn::Mul(x, vf);  // x * T(1 / count)
        hn::StoreU(first ? x : hn::Add(hn::LoadU(d, buf + c), x), d, buf + c);
      }
      for (; c < dim; ++c) {
        T x = v[c];
        if (scale) x = x * sc;
        if (s.freq) x = x * f;
        buf[c] = first ? x : buf[c] + x;
      }
    }
    if (s.maximize) {
      std::int64_t c = 0;
      for (; c + lanes <= dim; c += lanes) hn::StoreU(hn::Neg(hn::LoadU(d, buf + c)), d, buf + c);
      for (; c < dim; ++c) buf[c] = -buf[c];
    }
    return buf;
  }

  void prefetch(std::int64_t g, const T* w, std::size_t row_bytes) const {
    PrefetchBytes(w + s.rows[g] * s.dim, row_bytes);
  }
};

// sq[k] = the in-order sum of squares of grad row k (negated first when maximize, as the
// coalesced row is), for every grad row; four rows' chains interleaved.
template <typename T>
std::vector<T> RowSquareSums(const SparseRows& s) {
  const auto* grad = static_cast<const T*>(s.grad);
  const std::int64_t dim = s.dim;
  std::vector<T> sq(static_cast<std::size_t>(s.num_sources));
  const bool neg = s.maximize;
  parallel_ranges(s.num_sources, s.num_sources * dim,
                  [&](std::int64_t lo, std::int64_t hi, int, int) {
                    std::int64_t k = lo;
                    for (; k + 4 <= hi; k += 4) {
                      const T* g0 = grad + k * dim;
                      const T* g1 = g0 + dim;
                      const T* g2 = g1 + dim;
                      const T* g3 = g2 + dim;
                      T a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                      for (std::int64_t c = 0; c < dim; ++c) {
                        const T x0 = neg ? -g0[c] : g0[c], x1 = neg ? -g1[c] : g1[c];
                        const T x2 = neg ? -g2[c] : g2[c], x3 = neg ? -g3[c] : g3[c];
                        a0 = a0 + x0 * x0;
                        a1 = a1 + x1 * x1;
                        a2 = a2 + x2 * x2;
                        a3 = a3 + x3 * x3;
                      }
                      sq[static_cast<std::size_t>(k)] = a0;
                      sq[static_cast<std::size_t>(k + 1)] = a1;
                      sq[static_cast<std::size_t>(k + 2)] = a2;
                      sq[static_cast<std::size_t>(k + 3)] = a3;
                    }
                    for (; k < hi; ++k) {
                      const T* g0 = grad + k * dim;
                      T a0 = 0;
                      for (std::int64_t c = 0; c < dim; ++c) {
                        const T x0 = neg ? -g0[c] : g0[c];
                        a0 = a0 + x0 * x0;
                      }
                      sq[static_cast<std::size_t>(k)] = a0;
                    }
                  });
  return sq;
}

template <typename T>
void RowWiseAdagradTyped(const SparseRows& s, const RowWiseAdagradHyper& h, T* w, T* sum) {
  const Groups<T> groups(s);
  const std::int64_t dim = s.dim;
  const T lr = static_cast<T>(h.lr);
  const T eps = static_cast<T>(h.eps);
  const T wd = static_cast<T>(h.weight_decay);
  const bool decay = h.weight_decay != 0.0;
  const std::int64_t entries = s.starts[s.num_groups];
  // Shared sums of squares pay when grad rows are used by several table rows.
  std::vector<T> shared;
  if (!decay && !s.scale && !s.freq && 2 * s.num_sources <= entries) shared = RowSquareSums<T>(s);
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * sizeof(T);
  parallel_ranges(s.num_groups, entries * dim, [&](std::int64_t lo, std::int64_t hi, int, int) {
    const hn::ScalableTag<T> d;
    const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
    std::vector<T> cbuf(static_cast<std::size_t>(dim)), gbuf(cbuf.size());
    const auto vwd = hn::Set(d, wd);
    for (std::int64_t g = lo; g < hi; ++g) {
      if (g + kPrefetchAhead < hi) {
        groups.prefetch(g + kPrefetchAhead, w, row_bytes);
        hwy::Prefetch(sum + s.rows[g + kPrefetchAhead]);
      }
      const std::int64_t r = s.rows[g];
      T* row = w + r * dim;
      const T* c = groups.row(g, cbuf.data());
      if (decay) {  // g = c + wd * θ[r]
        std::int64_t e = 0;
        for (; e + lanes <= dim; e += lanes) {
          hn::StoreU(hn::Add(hn::LoadU(d, c + e), hn::Mul(vwd, hn::LoadU(d, row + e))), d,
                     gbuf.data() + e);
        }
        for (; e < dim; ++e) gbuf[static_cast<std::size_t>(e)] = c[e] + wd * row[e];
        c = gbuf.data();
      }
      T sq = 0;
      if (!shared.empty() && groups.plain(g)) {
        sq = shared[static_cast<std::size_t>(s.src[s.starts[g]])];
      } else {
        for (std::int64_t e = 0; e < dim; ++e) sq = sq + c[e] * c[e];  // in element order
      }
      sum[r] = sum[r] + sq / static_cast<T>(dim);
      const T mult = lr / (std::sqrt(sum[r]) + eps);
      const auto vm = hn::Set(d, mult);
      std::int64_t e = 0;
      for (; e + lanes <= dim; e += lanes) {  // θ[r] -= mult * g
        hn::StoreU(hn::Sub(hn::LoadU(d, row + e), hn::Mul(vm, hn::LoadU(d, c + e))), d, row + e);
      }
      for (; e < dim; ++e) row[e] = row[e] - mult * c[e];
    }
  });
}

template <typename T>
void AdagradTyped(const SparseRows& s, const AdagradHyper& h, T* w, T* sum) {
  const Groups<T> groups(s);
  const std::int64_t dim = s.dim;
  const T neg_clr = static_cast<T>(-h.clr);
  const T eps = static_cast<T>(h.eps);
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * sizeof(T);
  parallel_ranges(s.num_groups, s.starts[s.num_groups] * dim,
                  [&](std::int64_t lo, std::int64_t hi, int, int) {
                    const hn::ScalableTag<T> d;
                    const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
                    const auto vclr = hn::Set(d, neg_clr);
                    const auto veps = hn::Set(d, eps);
                    std::vector<T> cbuf(static_cast<std::size_t>(dim));
                    for (std::int64_t g = lo; g < hi; ++g) {
                      if (g + kPrefetchAhead < hi) {
                        groups.prefetch(g + kPrefetchAhead, w, row_bytes);
                        groups.prefetch(g + kPrefetchAhead, sum, row_bytes);
                      }
                      T* row = w + s.rows[g] * dim;
                      T* acc = sum + s.rows[g] * dim;
                      const T* c = groups.row(g, cbuf.data());
                      std::int64_t e = 0;
                      for (; e + lanes <= dim; e += lanes) {
                        const auto vc = hn::LoadU(d, c + e);
                        const auto va = hn::Add(hn::LoadU(d, acc + e), hn::Mul(vc, vc));
                        hn::StoreU(va, d, acc + e);                          // sum += c²
                        const auto vstd = hn::Add(hn::Sqrt(va), veps);       // sqrt(sum) + eps
                        const auto vr = FusedMulAdd(d, hn::Div(vc, vstd), vclr,
                                                    hn::LoadU(d, row + e));  // θ += -clr * c/std
                        hn::StoreU(vr, d, row + e);
                      }
                      for (; e < dim; ++e) {
                        acc[e] = acc[e] + c[e] * c[e];
                        const T std_v = std::sqrt(acc[e]) + eps;
                        row[e] = std::fma(c[e] / std_v, neg_clr, row[e]);
                      }
                    }
                  });
}

template <typename T>
void SgdTyped(const SparseRows& s, const SgdHyper& h, T* w) {
  const Groups<T> groups(s);
  const std::int64_t dim = s.dim;
  const T neg_lr = static_cast<T>(-h.lr);
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * sizeof(T);
  parallel_ranges(s.num_groups, s.starts[s.num_groups] * dim,
                  [&](std::int64_t lo, std::int64_t hi, int, int) {
                    const hn::ScalableTag<T> d;
                    const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
                    const auto vlr = hn::Set(d, neg_lr);
                    for (std::int64_t g = lo; g < hi; ++g) {
                      if (g + kPrefetchAhead < hi) groups.prefetch(g + kPrefetchAhead, w, row_bytes);
                      T* row = w + s.rows[g] * dim;
                      const T f = static_cast<T>(1.0 / static_cast<double>(groups.count(g)));
                      const auto vf = hn::Set(d, f);
                      for (std::int64_t k = s.starts[g]; k < s.starts[g + 1]; ++k) {
                        const T* v = groups.grad + s.src[k] * dim;
                        const T sc = groups.scale ? groups.scale[k] : T(1);
                        const auto vs = hn::Set(d, sc);
                        std::int64_t e = 0;
                        for (; e + lanes <= dim; e += lanes) {
                          auto x = hn::LoadU(d, v + e);
                          if (groups.scale) x = hn::Mul(x, vs);
                          if (s.freq) x = hn::Mul(x, vf);
                          if (s.maximize) x = hn::Neg(x);
                          // θ[r] = fma(x, -lr, θ[r])
                          hn::StoreU(FusedMulAdd(d, x, vlr, hn::LoadU(d, row + e)), d, row + e);
                        }
                        for (; e < dim; ++e) {
                          T x = v[e];
                          if (groups.scale) x = x * sc;
                          if (s.freq) x = x * f;
                          if (s.maximize) x = -x;
                          row[e] = std::fma(x, neg_lr, row[e]);
                        }
                      }
                    }
                  });
}

// Adam's element update over n elements (ref::adam_elements), vectors along the span; the tail
// is the twin itself.
template <typename T>
void AdamSpan(const AdamHyper& h, bool maximize, T* w, const T* grad, T* m, T* v, T* vmax,
              std::int64_t n) {
  const hn::ScalableTag<T> d;
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
  const auto vwd = hn::Set(d, static_cast<T>(h.wd));
  const auto vdecay = hn::Set(d, static_cast<T>(h.decay));
  const auto vb1 = hn::Set(d, static_cast<T>(h.beta1));
  const auto vomb1 = hn::Set(d, static_cast<T>(h.one_minus_beta1));
  const auto vb2 = hn::Set(d, static_cast<T>(h.beta2));
  const auto vomb2 = hn::Set(d, static_cast<T>(h.one_minus_beta2));
  const auto vbc2 = hn::Set(d, static_cast<T>(h.bc2_sqrt));
  const auto veps = hn::Set(d, static_cast<T>(h.eps));
  const auto vneg = hn::Set(d, static_cast<T>(h.neg_step_size));
  const auto vnan = hn::Set(d, std::numeric_limits<T>::quiet_NaN());
  std::int64_t e = 0;
  for (; e + lanes <= n; e += lanes) {
    auto g = hn::LoadU(d, grad + e);
    if (maximize) g = hn::Neg(g);
    auto wv = hn::LoadU(d, w + e);
    if (h.decoupled) wv = hn::Mul(wv, vdecay);            // θ *= 1 - lr * wd
    if (h.l2) g = FusedMulAdd(d, wv, vwd, g);             // g = fma(θ, wd, g)
    const auto mv = FusedMulAdd(d, g, vomb1, hn::Mul(hn::LoadU(d, m + e), vb1));
    hn::StoreU(mv, d, m + e);                              // m = fma(g, 1 - β1, m β1)
    const auto vv = FusedMulAdd(d, hn::Mul(vomb2, g), g, hn::Mul(hn::LoadU(d, v + e), vb2));
    hn::StoreU(vv, d, v + e);                              // v = fma((1 - β2) g, g, v β2)
    auto second = vv;
    if (h.amsgrad) {  // torch.maximum(vmax, v): NaN if either is
      const auto a = hn::LoadU(d, vmax + e);
      const auto larger = hn::IfThenElse(hn::Lt(a, vv), vv, a);
      second = hn::IfThenElse(hn::Or(hn::IsNaN(a), hn::IsNaN(vv)), vnan, larger);
      hn::StoreU(second, d, vmax + e);
    }
    const auto denom = hn::Add(hn::Div(hn::Sqrt(second), vbc2), veps);
    hn::StoreU(hn::Add(wv, hn::Div(hn::Mul(vneg, mv), denom)), d, w + e);
  }
  if (e < n) {
    ref::adam_elements(w + e, grad + e, m + e, v + e, vmax ? vmax + e : nullptr, n - e, h,
                       maximize);
  }
}

template <typename T>
void AdamRowsTyped(const SparseRows& s, const AdamHyper& h, T* w, T* m, T* v, T* vmax) {
  const Groups<T> groups(s);
  const std::int64_t dim = s.dim;
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * sizeof(T);
  parallel_ranges(s.num_groups, s.starts[s.num_groups] * dim,
                  [&](std::int64_t lo, std::int64_t hi, int, int) {
                    std::vector<T> cbuf(static_cast<std::size_t>(dim));
                    for (std::int64_t g = lo; g < hi; ++g) {
                      if (g + kPrefetchAhead < hi) {
                        groups.prefetch(g + kPrefetchAhead, w, row_bytes);
                        groups.prefetch(g + kPrefetchAhead, m, row_bytes);
                        groups.prefetch(g + kPrefetchAhead, v, row_bytes);
                      }
                      const std::int64_t off = s.rows[g] * dim;
                      AdamSpan(h, false, w + off, groups.row(g, cbuf.data()), m + off, v + off,
                               vmax ? vmax + off : nullptr, dim);
                    }
                  });
}

template <typename T>
void SparseAdamRowsTyped(const SparseRows& s, const SparseAdamHyper& h, T* w, T* m, T* sq) {
  const Groups<T> groups(s);
  const std::int64_t dim = s.dim;
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * sizeof(T);
  parallel_ranges(s.num_groups, s.starts[s.num_groups] * dim,
                  [&](std::int64_t lo, std::int64_t hi, int, int) {
                    const hn::ScalableTag<T> d;
                    const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
                    const auto vomb1 = hn::Set(d, static_cast<T>(h.one_minus_beta1));
                    const auto vomb2 = hn::Set(d, static_cast<T>(h.one_minus_beta2));
                    const auto veps = hn::Set(d, static_cast<T>(h.eps));
                    const auto vneg = hn::Set(d, static_cast<T>(h.neg_step_size));
                    std::vector<T> cbuf(static_cast<std::size_t>(dim));
                    for (std::int64_t g = lo; g < hi; ++g) {
                      if (g + kPrefetchAhead < hi) {
                        groups.prefetch(g + kPrefetchAhead, w, row_bytes);
                        groups.prefetch(g + kPrefetchAhead, m, row_bytes);
                        groups.prefetch(g + kPrefetchAhead, sq, row_bytes);
                      }
                      const std::int64_t off = s.rows[g] * dim;
                      const T* c = groups.row(g, cbuf.data());
                      T* wr = w + off;
                      T* mr = m + off;
                      T* sr = sq + off;
                      std::int64_t e = 0;
                      for (; e + lanes <= dim; e += lanes) {
                        const auto vc = hn::LoadU(d, c + e);
                        const auto m_old = hn::LoadU(d, mr + e);
                        const auto dm = hn::Mul(hn::Sub(vc, m_old), vomb1);
                        hn::StoreU(hn::Add(m_old, dm), d, mr + e);
                        const auto s_old = hn::LoadU(d, sr + e);
                        const auto ds = hn::Mul(hn::Sub(hn::Mul(vc, vc), s_old), vomb2);
                        hn::StoreU(hn::Add(s_old, ds), d, sr + e);
                        const auto numer = hn::Add(dm, m_old);
                        const auto denom = hn::Add(hn::Sqrt(hn::Add(ds, s_old)), veps);
                        hn::StoreU(hn::Add(hn::LoadU(d, wr + e), hn::Mul(hn::Div(numer, denom), vneg)),
                                   d, wr + e);
                      }
                      if (e < dim) ref::sparse_adam_row(c + e, dim - e, h, wr + e, mr + e, sr + e);
                    }
                  });
}

template <typename T>
void AdagradDenseTyped(const AdagradDenseHyper& h, std::int64_t n, const T* gp, T* w, T* sum) {
  parallel_ranges(n, n, [&](std::int64_t lo, std::int64_t hi, int, int) {
    const hn::ScalableTag<T> d;
    const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
    const auto vclr = hn::Set(d, static_cast<T>(-h.clr));
    const auto veps = hn::Set(d, static_cast<T>(h.eps));
    const auto vwd = hn::Set(d, static_cast<T>(h.weight_decay));
    const auto one = hn::Set(d, T(1));
    const bool decay = h.weight_decay != 0.0;
    std::int64_t k = lo;
    for (; k + lanes <= hi; k += lanes) {
      auto g = hn::LoadU(d, gp + k);
      if (h.maximize) g = hn::Neg(g);
      const auto wv = hn::LoadU(d, w + k);
      if (decay) g = FusedMulAdd(d, wv, vwd, g);                               // g += wd θ
      const auto sv = FusedMulAdd(d, hn::Mul(one, g), g, hn::LoadU(d, sum + k));  // sum += g²
      hn::StoreU(sv, d, sum + k);
      const auto vstd = hn::Add(hn::Sqrt(sv), veps);
      hn::StoreU(hn::Add(wv, hn::Div(hn::Mul(vclr, g), vstd)), d, w + k);  // θ += -clr g / std
    }
    if (k < hi) ref::adagrad_dense_typed(h, hi - k, gp + k, w + k, sum + k);
  });
}

void AdamRows(const SparseRows& s, const AdamHyper& h, void* w, void* m, void* v, void* vmax) {
  if (s.num_groups == 0 || s.dim == 0) return;
  if (s.dtype == DType::kFloat64) {
    AdamRowsTyped(s, h, static_cast<double*>(w), static_cast<double*>(m), static_cast<double*>(v),
                  static_cast<double*>(vmax));
  } else {
    AdamRowsTyped(s, h, static_cast<float*>(w), static_cast<float*>(m), static_cast<float*>(v),
                  static_cast<float*>(vmax));
  }
}

void SparseAdamRows(const SparseRows& s, const SparseAdamHyper& h, void* w, void* m, void* sq) {
  if (s.num_groups == 0 || s.dim == 0) return;
  if (s.dtype == DType::kFloat64) {
    SparseAdamRowsTyped(s, h, static_cast<double*>(w), static_cast<double*>(m),
                        static_cast<double*>(sq));
  } else {
    SparseAdamRowsTyped(s, h, static_cast<float*>(w), static_cast<float*>(m),
                        static_cast<float*>(sq));
  }
}

void AdamDense(DType dtype, const AdamHyper& h, std::int64_t n, const void* grad, void* w, void* m,
               void* v, void* vmax) {
  auto run = [&](auto tag) {
    using T = decltype(tag);
    parallel_ranges(n, n, [&](std::int64_t lo, std::int64_t hi, int, int) {
      T* vm = static_cast<T*>(vmax);
      AdamSpan(h, h.maximize, static_cast<T*>(w) + lo, static_cast<const T*>(grad) + lo,
               static_cast<T*>(m) + lo, static_cast<T*>(v) + lo, vm ? vm + lo : nullptr, hi - lo);
    });
  };
  if (dtype == DType::kFloat64) {
    run(double{});
  } else {
    run(float{});
  }
}

void AdagradDense(DType dtype, const AdagradDenseHyper& h, std::int64_t n, const void* grad,
                  void* w, void* sum) {
  if (dtype == DType::kFloat64) {
    AdagradDenseTyped(h, n, static_cast<const double*>(grad), static_cast<double*>(w),
                      static_cast<double*>(sum));
  } else {
    AdagradDenseTyped(h, n, static_cast<const float*>(grad), static_cast<float*>(w),
                      static_cast<float*>(sum));
  }
}

template <typename T>
void RowWiseAdagradDenseTyped(const RowWiseAdagradHyper& h, bool maximize, std::int64_t num_rows,
                              std::int64_t dim, const T* grad, T* w, T* sum) {
  const T lr = static_cast<T>(h.lr);
  const T eps = static_cast<T>(h.eps);
  const T wd = static_cast<T>(h.weight_decay);
  const bool decay = h.weight_decay != 0.0;
  parallel_ranges(num_rows, num_rows * dim, [&](std::int64_t lo, std::int64_t hi, int, int) {
    const hn::ScalableTag<T> d;
    const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
    const auto vwd = hn::Set(d, wd);
    std::vector<T> gbuf(static_cast<std::size_t>(dim));
    T* g = gbuf.data();
    for (std::int64_t r = lo; r < hi; ++r) {
      T* row = w + r * dim;
      const T* c = grad + r * dim;
      std::int64_t e = 0;
      for (; e + lanes <= dim; e += lanes) {  // g = ±grad (+ wd θ)
        auto x = hn::LoadU(d, c + e);
        if (maximize) x = hn::Neg(x);
        if (decay) x = hn::Add(x, hn::Mul(vwd, hn::LoadU(d, row + e)));
        hn::StoreU(x, d, g + e);
      }
      for (; e < dim; ++e) {
        T x = maximize ? -c[e] : c[e];
        if (decay) x = x + wd * row[e];
        g[e] = x;
      }
      T sq = 0;
      for (e = 0; e < dim; ++e) sq = sq + g[e] * g[e];  // in element order
      sum[r] = sum[r] + sq / static_cast<T>(dim);
      const T mult = lr / (std::sqrt(sum[r]) + eps);
      const auto vm = hn::Set(d, mult);
      for (e = 0; e + lanes <= dim; e += lanes) {
        hn::StoreU(hn::Sub(hn::LoadU(d, row + e), hn::Mul(vm, hn::LoadU(d, g + e))), d, row + e);
      }
      for (; e < dim; ++e) row[e] = row[e] - mult * g[e];
    }
  });
}

template <typename T>
void SgdDenseTyped(const SgdDenseHyper& h, std::int64_t n, const T* gp, T* w, T* buf) {
  parallel_ranges(n, n, [&](std::int64_t lo, std::int64_t hi, int, int) {
    const hn::ScalableTag<T> d;
    const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
    const auto vwd = hn::Set(d, static_cast<T>(h.weight_decay));
    const auto vmu = hn::Set(d, static_cast<T>(h.momentum));
    const auto vomd = hn::Set(d, static_cast<T>(1.0 - h.dampening));
    const auto vlr = hn::Set(d, static_cast<T>(-h.lr));
    const bool decay = h.weight_decay != 0.0;
    std::int64_t k = lo;
    for (; k + lanes <= hi; k += lanes) {
      auto dv = hn::LoadU(d, gp + k);
      if (h.maximize) dv = hn::Neg(dv);
      const auto wv = hn::LoadU(d, w + k);
      if (decay) dv = FusedMulAdd(d, wv, vwd, dv);  // d = fma(θ, wd, d)
      if (buf != nullptr) {
        const auto b = h.first ? dv : FusedMulAdd(d, dv, vomd, hn::Mul(hn::LoadU(d, buf + k), vmu));
        hn::StoreU(b, d, buf + k);
        dv = h.nesterov ? FusedMulAdd(d, b, vmu, dv) : b;
      }
      hn::StoreU(FusedMulAdd(d, dv, vlr, wv), d, w + k);  // θ = fma(d, -lr, θ)
    }
    if (k < hi) ref::sgd_dense_typed(h, hi - k, gp + k, w + k, buf ? buf + k : nullptr);
  });
}

void RowWiseAdagradDense(DType dtype, const RowWiseAdagradHyper& h, bool maximize,
                         std::int64_t num_rows, std::int64_t dim, const void* grad, void* w,
                         void* sum) {
  if (num_rows == 0 || dim == 0) return;
  if (dtype == DType::kFloat64) {
    RowWiseAdagradDenseTyped(h, maximize, num_rows, dim, static_cast<const double*>(grad),
                             static_cast<double*>(w), static_cast<double*>(sum));
  } else {
    RowWiseAdagradDenseTyped(h, maximize, num_rows, dim, static_cast<const float*>(grad),
                             static_cast<float*>(w), static_cast<float*>(sum));
  }
}

void SgdDense(DType dtype, const SgdDenseHyper& h, std::int64_t n, const void* grad, void* w,
              void* buf) {
  if (dtype == DType::kFloat64) {
    SgdDenseTyped(h, n, static_cast<const double*>(grad), static_cast<double*>(w),
                  static_cast<double*>(buf));
  } else {
    SgdDenseTyped(h, n, static_cast<const float*>(grad), static_cast<float*>(w),
                  static_cast<float*>(buf));
  }
}

void RowWiseAdagradRows(const SparseRows& s, const RowWiseAdagradHyper& h, void* w, void* sum) {
  if (s.num_groups == 0 || s.dim == 0) return;
  if (s.dtype == DType::kFloat64) {
    RowWiseAdagradTyped(s, h, static_cast<double*>(w), static_cast<double*>(sum));
  } else {
    RowWiseAdagradTyped(s, h, static_cast<float*>(w), static_cast<float*>(sum));
  }
}

void AdagradRows(const SparseRows& s, const AdagradHyper& h, void* w, void* sum) {
  if (s.num_groups == 0 || s.dim == 0) return;
  if (s.dtype == DType::kFloat64) {
    AdagradTyped(s, h, static_cast<double*>(w), static_cast<double*>(sum));
  } else {
    AdagradTyped(s, h, static_cast<float*>(w), static_cast<float*>(sum));
  }
}

void SgdRows(const SparseRows& s, const SgdHyper& h, void* w) {
  if (s.num_groups == 0 || s.dim == 0) return;
  if (s.dtype == DType::kFloat64) {
    SgdTyped(s, h, static_cast<double*>(w));
  } else {
    SgdTyped(s, h, static_cast<float*>(w));
  }
}

}  // namespace emb::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace emb::detail {

HWY_EXPORT(RowWiseAdagradRows);
HWY_EXPORT(AdagradRows);
HWY_EXPORT(SgdRows);
HWY_EXPORT(AdamRows);
HWY_EXPORT(SparseAdamRows);
HWY_EXPORT(AdamDense);
HWY_EXPORT(AdagradDense);
HWY_EXPORT(RowWiseAdagradDense);
HWY_EXPORT(SgdDense);

void fast::rowwise_adagrad_dense(DType dtype, const RowWiseAdagradHyper& h, bool maximize,
                                 std::int64_t num_rows, std::int64_t dim, const void* grad,
                                 void* w, void* sum) {
  EMB_DISPATCH(RowWiseAdagradDense)(dtype, h, maximize, num_rows, dim, grad, w, sum);
}

void fast::sgd_dense(DType dtype, const SgdDenseHyper& h, std::int64_t n, const void* grad,
                     void* w, void* buf) {
  EMB_DISPATCH(SgdDense)(dtype, h, n, grad, w, buf);
}

void fast::adam_rows(const SparseRows& s, const AdamHyper& h, void* w, void* m, void* v,
                     void* vmax) {
  EMB_DISPATCH(AdamRows)(s, h, w, m, v, vmax);
}

void fast::sparse_adam_rows(const SparseRows& s, const SparseAdamHyper& h, void* w, void* m,
                            void* sq) {
  EMB_DISPATCH(SparseAdamRows)(s, h, w, m, sq);
}

void fast::adam_dense(DType dtype, const AdamHyper& h, std::int64_t n, const void* grad, void* w,
                      void* m, void* v, void* vmax) {
  EMB_DISPATCH(AdamDense)(dtype, h, n, grad, w, m, v, vmax);
}

void fast::adagrad_dense(DType dtype, const AdagradDenseHyper& h, std::int64_t n,
                         const void* grad, void* w, void* sum) {
  EMB_DISPATCH(AdagradDense)(dtype, h, n, grad, w, sum);
}

void fast::rowwise_adagrad_rows(const SparseRows& s, const RowWiseAdagradHyper& h, void* w,
                                void* sum) {
  EMB_DISPATCH(RowWiseAdagradRows)(s, h, w, sum);
}

void fast::adagrad_rows(const SparseRows& s, const AdagradHyper& h, void* w, void* sum) {
  EMB_DISPATCH(AdagradRows)(s, h, w, sum);
}

void fast::sgd_rows(const SparseRows& s, const SgdHyper& h, void* w) {
  EMB_DISPATCH(SgdRows)(s, h, w);
}

}  // namespace emb::detail
#endif  // HWY_ONCE
