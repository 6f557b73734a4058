// Fast optimizer updates of a dense gradient (kernels/optim_rows.h): threads own contiguous
// element ranges (RowWiseAdagrad: row ranges), vectors run across the elements, so every element
// sees exactly its twin's operations (kernels/ref/optim_ref.h) in the same order. The element
// arithmetic is kernels/optim-inl.h's, shared with the sparse-row updates. Plain SGD leaves the
// blocks where its update is the identity unwritten (below).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/optim_dense.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/optim-inl.h"
#include "kernels/optim_rows.h"
#include "kernels/parallel.h"
#include "kernels/ref/optim_ref.h"
#include "kernels/simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace emb::detail::HWY_NAMESPACE {

// Untouched rows. A dense gradient is zero (all bits zero: +0.0) on the rows its batch missed,
// and plain SGD's update of an element whose gradient is +0 is the identity bit for bit, given the
// conditions below (docs/PERFORMANCE.md, "dense optimizer step"). The SGD kernel tests blocks of
// kSkipVectors vectors: a block whose gradient bits are all zero and whose weights hold no
// signaling NaN is left unwritten; any other block gets the full update. Either way every element
// ends as the twin leaves it. Adagrad, Adam and SGD with momentum, weight decay or maximize visit
// every element: there a +0 gradient does not always leave the state as it is.
inline constexpr std::int64_t kSkipVectors = 4;

/// Whether this thread keeps subnormal operands and results (no denormals-are-zero, no
/// flush-to-zero): w + (-0) must give back a subnormal w, as the skipped update assumes.
template <typename T>
bool KeepsSubnormals() {
  volatile T tiny = std::numeric_limits<T>::denorm_min();
  volatile T neg_zero = T(-0.0);
  const T sum = tiny + neg_zero;
  const T expect = std::numeric_limits<T>::denorm_min();
  return std::memcmp(&sum, &expect, sizeof(T)) == 0;
}

/// The lanes of v that hold a signaling NaN (the full update would quiet them).
template <class D>
HWY_INLINE auto SignalingNaN(D d, hn::Vec<D> v) {
  const hn::RebindToSigned<D> di;
  using I = hn::TFromD<decltype(di)>;
  constexpr I kExp = sizeof(I) == 8 ? I(0x7FF0000000000000) : I(0x7F800000);
  constexpr I kQuiet = sizeof(I) == 8 ? I(0x0008000000000000) : I(0x00400000);
  const auto a = hn::And(hn::BitCast(di, v), hn::Set(di, std::numeric_limits<I>::max()));
  (void)d;
  return hn::And(hn::Gt(a, hn::Set(di, kExp)), hn::Lt(a, hn::Set(di, I(kExp | kQuiet))));
}

/// Whether the bits of a, b, c, e are all zero (+0.0 in every lane).
template <class D>
HWY_INLINE bool AllPositiveZero(D d, hn::Vec<D> a, hn::Vec<D> b, hn::Vec<D> c, hn::Vec<D> e) {
  const hn::RebindToSigned<D> di;
  const auto any = hn::BitCast(di, hn::Or(hn::Or(a, b), hn::Or(c, e)));
  (void)d;
  return hn::AllTrue(di, hn::Eq(any, hn::Zero(di)));
}

/// Whether none of a, b, c, e holds a signaling NaN.
template <class D>
HWY_INLINE bool NoSignalingNaN(D d, hn::Vec<D> a, hn::Vec<D> b, hn::Vec<D> c, hn::Vec<D> e) {
  const hn::RebindToSigned<D> di;
  const auto m = hn::Or(hn::Or(SignalingNaN(d, a), SignalingNaN(d, b)),
                        hn::Or(SignalingNaN(d, c), SignalingNaN(d, e)));
  return hn::AllFalse(di, m);
}

/// Plain SGD (no momentum, weight decay or maximize) over n elements: θ = fma(g, -lr, θ), the
/// blocks with a +0 gradient and no signaling NaN in θ left as they are. With g = +0 and -lr
/// finite, g * -lr is exactly -0 and fma(g, -lr, θ) = θ + (-0) = θ for every θ but a signaling
/// NaN (+0 + -0 = +0, -0 + -0 = -0, infinities and quiet NaNs, payload included, come back).
template <typename T>
void SgdPlainSkipSpan(const SgdDenseHyper& h, std::int64_t n, const T* grad, T* w) {
  const hn::ScalableTag<T> d;
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
  const auto vlr = hn::Set(d, static_cast<T>(-h.lr));
  const std::int64_t block = kSkipVectors * lanes;
  std::int64_t k = 0;
  for (; k + block <= n; k += block) {
    const T* g = grad + k;
    T* x = w + k;
    const auto g0 = hn::LoadU(d, g), g1 = hn::LoadU(d, g + lanes);
    const auto g2 = hn::LoadU(d, g + 2 * lanes), g3 = hn::LoadU(d, g + 3 * lanes);
    const auto w0 = hn::LoadU(d, x), w1 = hn::LoadU(d, x + lanes);
    const auto w2 = hn::LoadU(d, x + 2 * lanes), w3 = hn::LoadU(d, x + 3 * lanes);
    if (AllPositiveZero(d, g0, g1, g2, g3) && NoSignalingNaN(d, w0, w1, w2, w3)) continue;
    hn::StoreU(FusedMulAdd(d, g0, vlr, w0), d, x);  // θ = fma(g, -lr, θ)
    hn::StoreU(FusedMulAdd(d, g1, vlr, w1), d, x + lanes);
    hn::StoreU(FusedMulAdd(d, g2, vlr, w2), d, x + 2 * lanes);
    hn::StoreU(FusedMulAdd(d, g3, vlr, w3), d, x + 3 * lanes);
  }
  if (k < n) SgdSpan(h, n - k, grad + k, w + k, static_cast<T*>(nullptr), true);
}

/// Whether SgdDense may skip: plain SGD whose -lr is finite in T, on a thread that keeps
/// subnormals.
template <typename T>
bool SgdMaySkip(const SgdDenseHyper& h, const void* buf) {
  return buf == nullptr && h.weight_decay == 0.0 && !h.maximize &&
         std::isfinite(static_cast<T>(-h.lr)) && KeepsSubnormals<T>();
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
      if (decay) g = FusedMulAdd(d, wv, vwd, g);                                  // g += wd θ
      const auto sv = FusedMulAdd(d, hn::Mul(one, g), g, hn::LoadU(d, sum + k));  // sum += g²
      hn::StoreU(sv, d, sum + k);
      const auto vstd = hn::Add(hn::Sqrt(sv), veps);
      hn::StoreU(hn::Add(wv, hn::Div(hn::Mul(vclr, g), vstd)), d, w + k);  // θ += -clr g / std
    }
    if (k < hi) ref::adagrad_dense_typed(h, hi - k, gp + k, w + k, sum + k);
  });
}

template <typename T>
void RowWiseAdagradDenseTyped(const RowWiseAdagradHyper& h, bool maximize, std::int64_t num_rows,
                              std::int64_t dim, const T* grad, T* w, T* sum) {
  parallel_ranges(num_rows, num_rows * dim, [&](std::int64_t lo, std::int64_t hi, int, int) {
    std::vector<T> gbuf(static_cast<std::size_t>(kSquareRows * dim));
    const T* c[kSquareRows];
    std::int64_t r[kSquareRows];
    T sq[kSquareRows];
    for (std::int64_t r0 = lo; r0 < hi; r0 += kSquareRows) {
      const std::int64_t n = std::min(kSquareRows, hi - r0);
      for (std::int64_t i = 0; i < n; ++i) {
        r[i] = r0 + i;
        c[i] = grad + r[i] * dim;
      }
      RowWiseAdagradBatch(h, dim, n, c, r, maximize, nullptr, sq, w, sum, gbuf.data());
    }
  });
}

void AdamDense(DType dtype, const AdamHyper& h, std::int64_t n, const void* grad, void* w, void* m,
               void* v, void* vmax) {
  VisitParamDType(dtype, [&](auto t) {
    using T = decltype(t);
    parallel_ranges(n, n, [&](std::int64_t lo, std::int64_t hi, int, int) {
      T* vm = static_cast<T*>(vmax);
      AdamSpan(h, h.maximize, static_cast<T*>(w) + lo, static_cast<const T*>(grad) + lo,
               static_cast<T*>(m) + lo, static_cast<T*>(v) + lo, vm ? vm + lo : nullptr, hi - lo);
    });
  });
}

void AdagradDense(DType dtype, const AdagradDenseHyper& h, std::int64_t n, const void* grad,
                  void* w, void* sum) {
  VisitParamDType(dtype, [&](auto t) {
    using T = decltype(t);
    AdagradDenseTyped(h, n, static_cast<const T*>(grad), static_cast<T*>(w), static_cast<T*>(sum));
  });
}

void RowWiseAdagradDense(DType dtype, const RowWiseAdagradHyper& h, bool maximize,
                         std::int64_t num_rows, std::int64_t dim, const void* grad, void* w,
                         void* sum) {
  if (num_rows == 0 || dim == 0) return;
  VisitParamDType(dtype, [&](auto t) {
    using T = decltype(t);
    RowWiseAdagradDenseTyped(h, maximize, num_rows, dim, static_cast<const T*>(grad),
                             static_cast<T*>(w), static_cast<T*>(sum));
  });
}

void SgdDense(DType dtype, const SgdDenseHyper& h, std::int64_t n, const void* grad, void* w,
              void* buf) {
  VisitParamDType(dtype, [&](auto t) {
    using T = decltype(t);
    parallel_ranges(n, n, [&](std::int64_t lo, std::int64_t hi, int, int) {
      if (SgdMaySkip<T>(h, buf)) {
        SgdPlainSkipSpan(h, hi - lo, static_cast<const T*>(grad) + lo, static_cast<T*>(w) + lo);
        return;
      }
      T* b = static_cast<T*>(buf);
      SgdSpan(h, hi - lo, static_cast<const T*>(grad) + lo, static_cast<T*>(w) + lo,
              b ? b + lo : nullptr, true);
    });
  });
}

}  // namespace emb::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace emb::detail {

HWY_EXPORT(AdamDense);
HWY_EXPORT(AdagradDense);
HWY_EXPORT(RowWiseAdagradDense);
HWY_EXPORT(SgdDense);

void fast::adam_dense(DType dtype, const AdamHyper& h, std::int64_t n, const void* grad, void* w,
                      void* m, void* v, void* vmax) {
  EMB_DISPATCH(AdamDense)(dtype, h, n, grad, w, m, v, vmax);
}

void fast::adagrad_dense(DType dtype, const AdagradDenseHyper& h, std::int64_t n, const void* grad,
                         void* w, void* sum) {
  EMB_DISPATCH(AdagradDense)(dtype, h, n, grad, w, sum);
}

void fast::rowwise_adagrad_dense(DType dtype, const RowWiseAdagradHyper& h, bool maximize,
                                 std::int64_t num_rows, std::int64_t dim, const void* grad, void* w,
                                 void* sum) {
  EMB_DISPATCH(RowWiseAdagradDense)(dtype, h, maximize, num_rows, dim, grad, w, sum);
}

void fast::sgd_dense(DType dtype, const SgdDenseHyper& h, std::int64_t n, const void* grad, void* w,
                     void* buf) {
  EMB_DISPATCH(SgdDense)(dtype, h, n, grad, w, buf);
}

}  // namespace emb::detail
#endif  // HWY_ONCE
