// Fast optimizer updates over a grouped row-sparse gradient (kernels/optim_rows.h): threads own
// contiguous ranges of groups (distinct rows), vectors run across a row's elements, so every
// element sees exactly its twin's operations (kernels/ref/optim_ref.h) in the same order. The
// table rows of the groups a few ahead are prefetched: a step on a big table waits on memory.
// The element arithmetic shared with the dense updates (kernels/optim_dense.cc) is in
// kernels/optim-inl.h.
//
// RowWiseAdagrad's row sum of squares is one chain of additions in element order (the
// definition): it runs sixteen rows at a time with vectors across the rows (SquareSums). When
// the gradient rows are used unscaled and unchanged (one entry per row, no weight decay: the
// usual bag-sum step), each grad row's sum is computed once and shared by every table row it
// lands on (a bag of 20 ids: 20 rows, one sum).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/optim_rows.cc"
#include "kernels/optim_rows.h"

#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/optim-inl.h"
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
        if (scale) x = hn::Mul(x, vs);   // x * scale[e]
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
};

/// A state tensor to prefetch alongside the table: base and width of its rows.
template <typename T>
using StateRows = std::pair<const T*, std::int64_t>;

/// The loop the sparse-row kernels share: threads take contiguous ranges of groups and call
/// body(g, n, c, scratch) on batches of n <= kBatch consecutive groups g .. g + n - 1, c[i] the
/// coalesced row of group g + i (Groups::row: the grad row itself or a row of a per-thread
/// buffer; null when !kCoalesce), scratch a per-thread buffer of scratch_rows rows. The rows of
/// `state` and the first grad row of the groups kPrefetchAhead ahead are prefetched.
template <std::int64_t kBatch, bool kCoalesce, typename T, std::size_t K, typename Body>
void ForGroups(const Groups<T>& groups, const std::array<StateRows<T>, K>& state,
               std::int64_t scratch_rows, Body&& body) {
  const SparseRows& s = groups.s;
  const std::int64_t dim = s.dim;
  parallel_ranges(
      s.num_groups, s.starts[s.num_groups] * dim, [&](std::int64_t lo, std::int64_t hi, int, int) {
        const std::int64_t rows = (kCoalesce ? kBatch : 0) + scratch_rows;
        std::vector<T> buf(static_cast<std::size_t>(rows * dim));
        T* scratch = buf.data() + (kCoalesce ? kBatch : 0) * dim;
        const T* c[kBatch] = {};
        for (std::int64_t g = lo; g < hi; g += kBatch) {
          const std::int64_t n = std::min(kBatch, hi - g);
          for (std::int64_t i = 0; i < n; ++i) {
            if (g + i + kPrefetchAhead < hi) {  // its state rows and its first grad row
              const std::int64_t ahead = g + i + kPrefetchAhead;
              const std::int64_t r = s.rows[ahead];
              for (const auto& [base, width] : state) {
                PrefetchBytes(base + r * width, static_cast<std::size_t>(width) * sizeof(T));
              }
              PrefetchBytes(groups.grad + s.src[s.starts[ahead]] * dim,
                            static_cast<std::size_t>(dim) * sizeof(T));
            }
            if constexpr (kCoalesce) c[i] = groups.row(g + i, buf.data() + i * dim);
          }
          body(g, n, c, scratch);
        }
      });
}

// sq[k] = the in-order sum of squares of grad row k (negated first when maximize, as the
// coalesced row is), for every grad row.
template <typename T>
std::vector<T> RowSquareSums(const SparseRows& s) {
  const auto* grad = static_cast<const T*>(s.grad);
  const std::int64_t dim = s.dim;
  std::vector<T> sq(static_cast<std::size_t>(s.num_sources));
  parallel_ranges(s.num_sources, s.num_sources * dim,
                  [&](std::int64_t lo, std::int64_t hi, int, int) {
                    const T* p[kSquareRows];
                    for (std::int64_t k = lo; k < hi; k += kSquareRows) {
                      const std::int64_t n = std::min(kSquareRows, hi - k);
                      for (std::int64_t i = 0; i < n; ++i) p[i] = grad + (k + i) * dim;
                      SquareSums(p, n, dim, s.maximize, sq.data() + k);
                    }
                  });
  return sq;
}

template <typename T>
void RowWiseAdagradTyped(const SparseRows& s, const RowWiseAdagradHyper& h, T* w, T* sum) {
  const Groups<T> groups(s);
  const std::int64_t dim = s.dim;
  const std::int64_t entries = s.starts[s.num_groups];
  // Shared sums of squares pay when grad rows are used by several table rows.
  std::vector<T> shared;
  if (h.weight_decay == 0.0 && !s.scale && !s.freq && 2 * s.num_sources <= entries) {
    shared = RowSquareSums<T>(s);
  }
  const std::array<StateRows<T>, 2> state = {{{w, dim}, {sum, 1}}};
  ForGroups<kSquareRows, true>(
      groups, state, kSquareRows, [&](std::int64_t g, std::int64_t n, const T** c, T* gbuf) {
        T sq[kSquareRows];
        bool known[kSquareRows];
        for (std::int64_t i = 0; i < n; ++i) {
          known[i] = !shared.empty() && groups.plain(g + i);
          if (known[i]) sq[i] = shared[static_cast<std::size_t>(s.src[s.starts[g + i]])];
        }
        RowWiseAdagradBatch(h, dim, n, c, s.rows + g, false, known, sq, w, sum, gbuf);
      });
}

template <typename T>
void AdagradTyped(const SparseRows& s, const AdagradHyper& h, T* w, T* sum) {
  const Groups<T> groups(s);
  const std::int64_t dim = s.dim;
  const T neg_clr = static_cast<T>(-h.clr);
  const T eps = static_cast<T>(h.eps);
  const std::array<StateRows<T>, 2> state = {{{w, dim}, {sum, dim}}};
  ForGroups<1, true>(groups, state, 0, [&](std::int64_t g, std::int64_t, const T** cs, T*) {
    const hn::ScalableTag<T> d;
    const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
    const auto vclr = hn::Set(d, neg_clr);
    const auto veps = hn::Set(d, eps);
    T* row = w + s.rows[g] * dim;
    T* acc = sum + s.rows[g] * dim;
    const T* c = cs[0];
    std::int64_t e = 0;
    for (; e + lanes <= dim; e += lanes) {
      const auto vc = hn::LoadU(d, c + e);
      const auto va = hn::Add(hn::LoadU(d, acc + e), hn::Mul(vc, vc));
      hn::StoreU(va, d, acc + e);                     // sum += c²
      const auto vstd = hn::Add(hn::Sqrt(va), veps);  // sqrt(sum) + eps
      hn::StoreU(FusedMulAdd(d, hn::Div(vc, vstd), vclr, hn::LoadU(d, row + e)), d, row + e);
    }
    if (e < dim) ref::adagrad_row(c + e, dim - e, h, row + e, acc + e);
  });
}

template <typename T>
void SgdTyped(const SparseRows& s, const SgdHyper& h, T* w) {
  const Groups<T> groups(s);
  const std::int64_t dim = s.dim;
  const T neg_lr = static_cast<T>(-h.lr);
  const std::array<StateRows<T>, 1> state = {{{w, dim}}};
  ForGroups<1, false>(groups, state, 0, [&](std::int64_t g, std::int64_t, const T**, T*) {
    const hn::ScalableTag<T> d;
    const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
    const auto vlr = hn::Set(d, neg_lr);
    T* row = w + s.rows[g] * dim;
    const T f = static_cast<T>(1.0 / static_cast<double>(groups.count(g)));
    const auto vf = hn::Set(d, f);
    for (std::int64_t k = s.starts[g]; k < s.starts[g + 1]; ++k) {  // each entry on its own
      const T* v = groups.grad + s.src[k] * dim;
      const T sc = groups.scale ? groups.scale[k] : T(1);
      const auto vs = hn::Set(d, sc);
      std::int64_t e = 0;
      for (; e + lanes <= dim; e += lanes) {
        auto x = hn::LoadU(d, v + e);
        if (groups.scale) x = hn::Mul(x, vs);
        if (s.freq) x = hn::Mul(x, vf);
        if (s.maximize) x = hn::Neg(x);
        hn::StoreU(FusedMulAdd(d, x, vlr, hn::LoadU(d, row + e)), d, row + e);  // θ += x * -lr
      }
      for (; e < dim; ++e) {
        T x = v[e];
        if (groups.scale) x = x * sc;
        if (s.freq) x = x * f;
        if (s.maximize) x = -x;
        row[e] = std::fma(x, neg_lr, row[e]);
      }
    }
  });
}

template <typename T>
void AdamRowsTyped(const SparseRows& s, const AdamHyper& h, T* w, T* m, T* v, T* vmax) {
  const Groups<T> groups(s);
  const std::int64_t dim = s.dim;
  const std::array<StateRows<T>, 3> state = {{{w, dim}, {m, dim}, {v, dim}}};
  ForGroups<1, true>(groups, state, 0, [&](std::int64_t g, std::int64_t, const T** c, T*) {
    const std::int64_t off = s.rows[g] * dim;
    AdamSpan(h, false, w + off, c[0], m + off, v + off, vmax ? vmax + off : nullptr, dim);
  });
}

template <typename T>
void SparseAdamRowsTyped(const SparseRows& s, const SparseAdamHyper& h, T* w, T* m, T* sq) {
  const Groups<T> groups(s);
  const std::int64_t dim = s.dim;
  const std::array<StateRows<T>, 3> state = {{{w, dim}, {m, dim}, {sq, dim}}};
  ForGroups<1, true>(groups, state, 0, [&](std::int64_t g, std::int64_t, const T** cs, T*) {
    const hn::ScalableTag<T> d;
    const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
    const auto vomb1 = hn::Set(d, static_cast<T>(h.one_minus_beta1));
    const auto vomb2 = hn::Set(d, static_cast<T>(h.one_minus_beta2));
    const auto veps = hn::Set(d, static_cast<T>(h.eps));
    const auto vneg = hn::Set(d, static_cast<T>(h.neg_step_size));
    const std::int64_t off = s.rows[g] * dim;
    const T* c = cs[0];
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
      hn::StoreU(hn::Add(hn::LoadU(d, wr + e), hn::Mul(hn::Div(numer, denom), vneg)), d, wr + e);
    }
    if (e < dim) ref::sparse_adam_row(c + e, dim - e, h, wr + e, mr + e, sr + e);
  });
}

template <typename T>
void SgdMomentumRowsTyped(const SgdMomentumRows& a, const SgdDenseHyper& h, T* w, T* buf) {
  SgdDenseHyper k = h;  // the rows come negated; sparse SGD has no weight decay
  k.maximize = false;
  k.weight_decay = 0.0;
  const auto* values = static_cast<const T*>(a.values);
  const std::int64_t dim = a.dim;
  parallel_ranges(a.used, a.used * dim, [&](std::int64_t lo, std::int64_t hi, int, int) {
    for (std::int64_t slot = lo; slot < hi; ++slot) {
      if (slot + kPrefetchAhead < hi) {
        PrefetchBytes(w + a.rows[slot + kPrefetchAhead] * dim,
                      static_cast<std::size_t>(dim) * sizeof(T));
      }
      const std::int64_t j = a.grad_of_slot[slot];
      SgdSpan(k, dim, j >= 0 ? values + j * dim : nullptr, w + a.rows[slot] * dim, buf + slot * dim,
              slot < a.old_used);
    }
  });
}

void RowWiseAdagradRows(const SparseRows& s, const RowWiseAdagradHyper& h, void* w, void* sum) {
  if (s.num_groups == 0 || s.dim == 0) return;
  VisitParamDType(s.dtype, [&](auto t) {
    using T = decltype(t);
    RowWiseAdagradTyped(s, h, static_cast<T*>(w), static_cast<T*>(sum));
  });
}

void AdagradRows(const SparseRows& s, const AdagradHyper& h, void* w, void* sum) {
  if (s.num_groups == 0 || s.dim == 0) return;
  VisitParamDType(s.dtype, [&](auto t) {
    using T = decltype(t);
    AdagradTyped(s, h, static_cast<T*>(w), static_cast<T*>(sum));
  });
}

void SgdRows(const SparseRows& s, const SgdHyper& h, void* w) {
  if (s.num_groups == 0 || s.dim == 0) return;
  VisitParamDType(s.dtype, [&](auto t) {
    using T = decltype(t);
    SgdTyped(s, h, static_cast<T*>(w));
  });
}

void SgdMomentumRows(const SgdMomentumRows& a, const SgdDenseHyper& h, void* w, void* buf) {
  if (a.used == 0 || a.dim == 0) return;
  VisitParamDType(a.dtype, [&](auto t) {
    using T = decltype(t);
    SgdMomentumRowsTyped(a, h, static_cast<T*>(w), static_cast<T*>(buf));
  });
}

void AdamRows(const SparseRows& s, const AdamHyper& h, void* w, void* m, void* v, void* vmax) {
  if (s.num_groups == 0 || s.dim == 0) return;
  VisitParamDType(s.dtype, [&](auto t) {
    using T = decltype(t);
    AdamRowsTyped(s, h, static_cast<T*>(w), static_cast<T*>(m), static_cast<T*>(v),
                  static_cast<T*>(vmax));
  });
}

void SparseAdamRows(const SparseRows& s, const SparseAdamHyper& h, void* w, void* m, void* sq) {
  if (s.num_groups == 0 || s.dim == 0) return;
  VisitParamDType(s.dtype, [&](auto t) {
    using T = decltype(t);
    SparseAdamRowsTyped(s, h, static_cast<T*>(w), static_cast<T*>(m), static_cast<T*>(sq));
  });
}

}  // namespace emb::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace emb::detail {

HWY_EXPORT(RowWiseAdagradRows);
HWY_EXPORT(AdagradRows);
HWY_EXPORT(SgdRows);
HWY_EXPORT(SgdMomentumRows);
HWY_EXPORT(AdamRows);
HWY_EXPORT(SparseAdamRows);

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

void fast::sgd_momentum_rows(const SgdMomentumRows& m, const SgdDenseHyper& h, void* w, void* buf) {
  EMB_DISPATCH(SgdMomentumRows)(m, h, w, buf);
}

void fast::adam_rows(const SparseRows& s, const AdamHyper& h, void* w, void* m, void* v,
                     void* vmax) {
  EMB_DISPATCH(AdamRows)(s, h, w, m, v, vmax);
}

void fast::sparse_adam_rows(const SparseRows& s, const SparseAdamHyper& h, void* w, void* m,
                            void* sq) {
  EMB_DISPATCH(SparseAdamRows)(s, h, w, m, sq);
}

}  // namespace emb::detail
#endif  // HWY_ONCE
