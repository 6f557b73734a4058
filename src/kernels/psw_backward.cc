// Fast gradient of per_sample_weights: out[i] = dot(grad[offset2bag[i]], table[ids[i]]), each dot
// in the twin's order (left to right over the row, so it stays scalar), threads over ranges of
// positions, table rows prefetched kPrefetchAhead positions ahead.
// Twin: ref::bag_per_sample_weights_backward.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/psw_backward.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/dispatch.h"
#include "kernels/fast.h"
#include "kernels/parallel.h"
#include "kernels/simd-inl.h"
#include "kernels/visit.h"

HWY_BEFORE_NAMESPACE();
namespace emb::detail::HWY_NAMESPACE {

template <typename T, typename Index>
void PswBackwardTyped(const fast::PswBackwardArgs& a) {
  using A = Arith<T>;
  const auto* grad = static_cast<const T*>(a.grad);
  const auto* table = static_cast<const T*>(a.table);
  const auto* ids = static_cast<const Index*>(a.ids);
  T* out = static_cast<T*>(a.out);
  const std::int64_t dim = a.dim;
  parallel_ranges(a.n, a.n * dim, [&](std::int64_t begin, std::int64_t end, int, int) {
    for (std::int64_t i = begin; i < end; ++i) {
      if (i + kPrefetchAhead < end) {
        PrefetchBytes(table + static_cast<std::int64_t>(ids[i + kPrefetchAhead]) * dim,
                      static_cast<std::size_t>(dim) * sizeof(T));
      }
      const std::int64_t k = ids[i];
      A acc = 0;
      if (k != a.padding_idx) {
        const T* g = grad + a.offset2bag[i] * dim;
        const T* w = table + k * dim;
        if (a.dot == fast::PswDot::kFused) {
          for (std::int64_t d = 0; d < dim; ++d) acc = std::fma(A(g[d]), A(w[d]), acc);
        } else if (a.dot == fast::PswDot::kUnfused || !kIs16<T>) {
          for (std::int64_t d = 0; d < dim; ++d) acc = acc + A(g[d]) * A(w[d]);
        } else {  // a 16-bit type in its own arithmetic
          for (std::int64_t d = 0; d < dim; ++d) acc = A(T(acc + A(T(A(g[d]) * A(w[d])))));
        }
      }
      out[i] = T(acc);
    }
  });
}

void PswBackward(const fast::PswBackwardArgs& a) {
  if (a.n == 0) return;
  visit_float_and_index(a.dtype, a.ids64,
                        [&](auto t, auto i) { PswBackwardTyped<decltype(t), decltype(i)>(a); });
}

}  // namespace emb::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace emb::detail {

HWY_EXPORT(PswBackward);

void fast::bag_per_sample_weights_backward_any(const PswBackwardArgs& a) {
  EMB_DISPATCH(PswBackward)(a);
}

}  // namespace emb::detail
#endif  // HWY_ONCE
