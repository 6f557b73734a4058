// Per-target pieces the optimizer kernels share (kernels/optim_rows.cc: the sparse-row updates,
// kernels/optim_dense.cc: the dense ones): each optimizer's element arithmetic, written once
// with vectors across a row's elements, and RowWiseAdagrad's sums of squares with vectors across
// rows. Every element (and every row's sum) sees exactly its twin's operations in the twin's
// order (kernels/ref/optim_ref.h).

// Per-target include guard (Highway's convention for -inl headers).
#if defined(EMB_KERNELS_OPTIM_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef EMB_KERNELS_OPTIM_INL_H_
#undef EMB_KERNELS_OPTIM_INL_H_
#else
#define EMB_KERNELS_OPTIM_INL_H_
#endif

#include <hwy/highway.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "emb/dtype.h"
#include "kernels/optim_rows.h"
#include "kernels/ref/optim_ref.h"
#include "kernels/simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace emb::detail::HWY_NAMESPACE {

/// Calls fn(T{}) for a parameter dtype: float64 or float32 (the optimizers accept no other).
template <typename Fn>
void VisitParamDType(DType dtype, Fn&& fn) {
  if (dtype == DType::kFloat64) {
    fn(double{});
  } else {
    fn(float{});
  }
}

/// How many rows SquareSums sums at once: four tiles of four rows.
inline constexpr std::int64_t kSquareRows = 16;

/// out[i] = x[0]² + x[1]² + ... + x[n-1]² for the rows x = p[i] (negated first when neg),
/// i < count ≤ kSquareRows, each one chain of additions in element order from 0 (the twin's
/// sum). A row's chain cannot be split across lanes without reordering it, so vectors run
/// across rows instead: the next Lanes elements of four rows are interleaved into a tile
/// (StoreInterleaved4: tile[4 i + k] = p[k][c + i]), whose 4-lane slices feed one accumulator
/// per tile, lane k the chain of row k; four tiles keep four chains in flight. Where a vector of
/// T has fewer than 4 lanes (float64 on 128-bit targets), the chains run one by one.
template <typename T>
void SquareSums(const T* const* p, std::int64_t count, std::int64_t n, bool neg, T* out) {
  const hn::CappedTag<T, 4> d4;
  if (hn::Lanes(d4) < 4) {
    for (std::int64_t i = 0; i < count; ++i) {
      T a = 0;
      for (std::int64_t c = 0; c < n; ++c) {
        const T x = neg ? -p[i][c] : p[i][c];
        a = a + x * x;
      }
      out[i] = a;
    }
    return;
  }
  const T* rows[kSquareRows];
  for (std::int64_t i = 0; i < kSquareRows; ++i) rows[i] = p[i < count ? i : count - 1];
  const hn::ScalableTag<T> d;
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
  HWY_ALIGN T tile[4][4 * hn::MaxLanes(d)];
  auto a0 = hn::Zero(d4), a1 = a0, a2 = a0, a3 = a0;
  std::int64_t c = 0;
  for (; c + lanes <= n; c += lanes) {
    for (int t = 0; t < 4; ++t) {
      auto v0 = hn::LoadU(d, rows[4 * t] + c), v1 = hn::LoadU(d, rows[4 * t + 1] + c);
      auto v2 = hn::LoadU(d, rows[4 * t + 2] + c), v3 = hn::LoadU(d, rows[4 * t + 3] + c);
      if (neg) {
        v0 = hn::Neg(v0);
        v1 = hn::Neg(v1);
        v2 = hn::Neg(v2);
        v3 = hn::Neg(v3);
      }
      hn::StoreInterleaved4(v0, v1, v2, v3, d, tile[t]);
    }
    for (std::int64_t i = 0; i < 4 * lanes; i += 4) {  // element c + i / 4 of the 16 rows
      const auto x0 = hn::Load(d4, tile[0] + i), x1 = hn::Load(d4, tile[1] + i);
      const auto x2 = hn::Load(d4, tile[2] + i), x3 = hn::Load(d4, tile[3] + i);
      a0 = hn::Add(a0, hn::Mul(x0, x0));  // a = a + x * x, lane k for row k
      a1 = hn::Add(a1, hn::Mul(x1, x1));
      a2 = hn::Add(a2, hn::Mul(x2, x2));
      a3 = hn::Add(a3, hn::Mul(x3, x3));
    }
  }
  HWY_ALIGN T sums[kSquareRows];
  hn::Store(a0, d4, sums);
  hn::Store(a1, d4, sums + 4);
  hn::Store(a2, d4, sums + 8);
  hn::Store(a3, d4, sums + 12);
  for (std::int64_t i = 0; i < count; ++i) {
    T a = sums[i];
    for (std::int64_t e = c; e < n; ++e) {
      const T x = neg ? -rows[i][e] : rows[i][e];
      a = a + x * x;
    }
    out[i] = a;
  }
}

/// RowWiseAdagrad on n ≤ kSquareRows rows at once (ref::rowwise_adagrad_row on each): table row
/// r[i] of w gets gradient row c[i], negated first when neg. Where known[i], sq[i] already holds
/// the sum of squares of the (negated) row; the others are computed here. gbuf: n * dim.
template <typename T>
void RowWiseAdagradBatch(const RowWiseAdagradHyper& h, std::int64_t dim, std::int64_t n,
                         const T* const* c, const std::int64_t* r, bool neg, const bool* known,
                         T* sq, T* w, T* sum, T* gbuf) {
  const hn::ScalableTag<T> d;
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
  const T lr = static_cast<T>(h.lr);
  const T eps = static_cast<T>(h.eps);
  const T wd = static_cast<T>(h.weight_decay);
  const bool decay = h.weight_decay != 0.0;
  const auto vwd = hn::Set(d, wd);
  const T* g[kSquareRows];
  const T* todo[kSquareRows];
  std::int64_t todo_row[kSquareRows];
  std::int64_t m = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const T* row = w + r[i] * dim;
    g[i] = c[i];
    if (neg || decay) {  // g = ±c (+ wd * θ[r])
      T* out = gbuf + i * dim;
      std::int64_t e = 0;
      for (; e + lanes <= dim; e += lanes) {
        auto x = hn::LoadU(d, c[i] + e);
        if (neg) x = hn::Neg(x);
        if (decay) x = hn::Add(x, hn::Mul(vwd, hn::LoadU(d, row + e)));
        hn::StoreU(x, d, out + e);
      }
      for (; e < dim; ++e) {
        T x = neg ? -c[i][e] : c[i][e];
        if (decay) x = x + wd * row[e];
        out[e] = x;
      }
      g[i] = out;
    }
    if (known == nullptr || !known[i]) {
      todo[m] = g[i];
      todo_row[m++] = i;
    }
  }
  if (m > 0) {
    T part[kSquareRows];
    SquareSums(todo, m, dim, false, part);
    for (std::int64_t k = 0; k < m; ++k) sq[todo_row[k]] = part[k];
  }
  for (std::int64_t i = 0; i < n; ++i) {
    T* row = w + r[i] * dim;
    T& acc = sum[r[i]];
    acc = acc + sq[i] / static_cast<T>(dim);
    const T mult = lr / (std::sqrt(acc) + eps);
    const auto vm = hn::Set(d, mult);
    std::int64_t e = 0;
    for (; e + lanes <= dim; e += lanes) {  // θ[r] -= mult * g
      hn::StoreU(hn::Sub(hn::LoadU(d, row + e), hn::Mul(vm, hn::LoadU(d, g[i] + e))), d, row + e);
    }
    for (; e < dim; ++e) row[e] = row[e] - mult * g[i][e];
  }
}

/// Adam's element update over n elements (ref::adam_elements); the tail is the twin itself.
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
    if (h.decoupled) wv = hn::Mul(wv, vdecay);  // θ *= 1 - lr * wd
    if (h.l2) g = FusedMulAdd(d, wv, vwd, g);   // g = fma(θ, wd, g)
    const auto mv = FusedMulAdd(d, g, vomb1, hn::Mul(hn::LoadU(d, m + e), vb1));
    hn::StoreU(mv, d, m + e);  // m = fma(g, 1 - β1, m β1)
    const auto vv = FusedMulAdd(d, hn::Mul(vomb2, g), g, hn::Mul(hn::LoadU(d, v + e), vb2));
    hn::StoreU(vv, d, v + e);  // v = fma((1 - β2) g, g, v β2)
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

/// SGD's element update over n elements (ref::sgd_elements): grad null reads as zeros, buf null
/// means no momentum; scale_buf: the buffer decays (buf * μ) before the gradient joins it.
/// The tail is the twin itself.
template <typename T>
void SgdSpan(const SgdDenseHyper& h, std::int64_t n, const T* grad, T* w, T* buf, bool scale_buf) {
  const hn::ScalableTag<T> d;
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
  const auto vwd = hn::Set(d, static_cast<T>(h.weight_decay));
  const auto vmu = hn::Set(d, static_cast<T>(h.momentum));
  const auto vomd = hn::Set(d, static_cast<T>(1.0 - h.dampening));
  const auto vlr = hn::Set(d, static_cast<T>(-h.lr));
  const bool decay = h.weight_decay != 0.0;
  std::int64_t k = 0;
  for (; k + lanes <= n; k += lanes) {
    auto dv = grad ? hn::LoadU(d, grad + k) : hn::Zero(d);
    if (grad && h.maximize) dv = hn::Neg(dv);
    const auto wv = hn::LoadU(d, w + k);
    if (decay) dv = FusedMulAdd(d, wv, vwd, dv);  // d = fma(θ, wd, d)
    if (buf != nullptr) {
      auto b = dv;
      if (!h.first) {
        b = hn::LoadU(d, buf + k);
        if (scale_buf) b = hn::Mul(b, vmu);         // buf = buf * μ
        if (grad) b = FusedMulAdd(d, dv, vomd, b);  // buf = fma(d, 1 - dampening, buf)
      }
      hn::StoreU(b, d, buf + k);
      dv = h.nesterov ? FusedMulAdd(d, b, vmu, dv) : b;  // d = fma(buf, μ, d) or buf
    }
    hn::StoreU(FusedMulAdd(d, dv, vlr, wv), d, w + k);  // θ = fma(d, -lr, θ)
  }
  if (k < n) {
    ref::sgd_elements(h, n - k, grad ? grad + k : nullptr, w + k, buf ? buf + k : nullptr,
                      scale_buf);
  }
}

}  // namespace emb::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // EMB_KERNELS_OPTIM_INL_H_
