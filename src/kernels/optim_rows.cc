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
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/optim_rows.h"
#include "kernels/parallel.h"
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
