// Fast optimizer updates of a dense gradient (kernels/optim_rows.h): threads own contiguous
// element ranges (RowWiseAdagrad: row ranges), vectors run across the elements, so every element
// sees exactly its twin's operations (kernels/ref/optim_ref.h) in the same order. The element
// arithmetic is kernels/optim-inl.h's, shared with the sparse-row updates.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/optim_dense.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/optim-inl.h"
#include "kernels/optim_rows.h"
#include "kernels/parallel.h"
#include "kernels/ref/optim_ref.h"
#include "kernels/simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace emb::detail::HWY_NAMESPACE {

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
