// Fast rows of a sparse gradient: each output row is one group of positions (one id), its value
// rows scaled and summed in the group's order; uncoalesced (one position per group) it is a
// threaded copy. Threads own ranges of output rows; the value rows of the positions a few groups
// ahead are prefetched (in the coalesced case they are reads at random). float32/float64 rows
// are vectors (per element the twin's multiplies and adds, in its order, none fused); float16 and
// bfloat16 keep the twin's scalar roundings. Twin: ref::sparse_grad_rows.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/sparse_rows.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/fast_sparse.h"
#include "kernels/parallel.h"
#include "kernels/simd-inl.h"
#include "kernels/visit.h"

HWY_BEFORE_NAMESPACE();
namespace emb::detail::HWY_NAMESPACE {

// out[d] = v[d] (first) or out[d] + v[d], where v = row * s1 (if has1) * s2 (if has2), per
// element in that order.
template <typename T>
HWY_INLINE void ScaledRow(const T* row, T* out, std::int64_t dim, bool first, bool has1, T s1,
                          bool has2, T s2) {
  if (first && !has1 && !has2) {
    std::memcpy(out, row, static_cast<std::size_t>(dim) * sizeof(T));
    return;
  }
  const hn::ScalableTag<T> d;
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
  const auto v1 = hn::Set(d, s1);
  const auto v2 = hn::Set(d, s2);
  std::int64_t c = 0;
  for (; c + lanes <= dim; c += lanes) {
    auto v = hn::LoadU(d, row + c);
    if (has1) v = hn::Mul(v, v1);
    if (has2) v = hn::Mul(v, v2);
    if (!first) v = hn::Add(hn::LoadU(d, out + c), v);
    hn::StoreU(v, d, out + c);
  }
  for (; c < dim; ++c) {
    T v = row[c];
    if (has1) v = v * s1;
    if (has2) v = v * s2;
    out[c] = first ? v : out[c] + v;
  }
}

// The 16-bit twin, element by element.
template <typename T>
HWY_INLINE void ScaledRow16(const T* row, T* out, std::int64_t dim, bool first, bool has1, float s1,
                            bool has2, float s2) {
  for (std::int64_t c = 0; c < dim; ++c) {
    T v = row[c];
    if (has1) v = T(float(v) * s1);
    if (has2) v = T(float(v) * s2);
    out[c] = first ? v : T(float(out[c]) + float(v));
  }
}

template <typename T, typename Index>
void SparseRowsTyped(const fast::SparseRowsArgs& a) {
  using A = Arith<T>;
  const auto* grad = static_cast<const T*>(a.grad);
  const auto* psw = static_cast<const T*>(a.psw);
  const auto* ids = static_cast<const Index*>(a.ids);
  T* values = static_cast<T*>(a.out_values);
  const std::int64_t dim = a.dim;
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * sizeof(T);
  const std::int64_t positions = a.starts ? a.starts[a.groups] : a.groups;
  const auto position = [&](std::int64_t j) { return a.order ? a.order[j] : j; };
  const auto source = [&](std::int64_t i) { return a.src_row ? a.src_row[i] : i; };
  parallel_ranges(a.groups, positions * dim, [&](std::int64_t lo, std::int64_t hi, int, int) {
    const std::int64_t j_end = a.starts ? a.starts[hi] : hi;
    for (std::int64_t g = lo; g < hi; ++g) {
      const std::int64_t begin = a.starts ? a.starts[g] : g;
      const std::int64_t end = a.starts ? a.starts[g + 1] : g + 1;
      T* out = values + g * dim;
      for (std::int64_t j = begin; j < end; ++j) {
        if (j + kPrefetchAhead < j_end) {
          const std::int64_t ahead = position(j + kPrefetchAhead);
          PrefetchBytes(grad + source(ahead) * dim, row_bytes);
          if (a.out_ids) hwy::Prefetch(ids + ahead);  // read at random below
        }
        const std::int64_t i = position(j);
        const std::int64_t src = source(i);
        A s1 = A(1);
        const bool has1 = a.bag_size || psw;
        if (a.bag_size) {
          s1 = A(T(A(1) / A(T(static_cast<A>(a.bag_size[src])))));
        } else if (psw) {
          s1 = A(psw[i]);
        }
        const bool has2 = a.counts;
        const A s2 =
            has2 ? static_cast<A>(T(static_cast<A>(1.0 / static_cast<double>(a.counts[i])))) : A(1);
        if (j == begin && a.out_ids) a.out_ids[g] = static_cast<std::int64_t>(ids[i]);
        if constexpr (kIs16<T>) {
          ScaledRow16(grad + src * dim, out, dim, j == begin, has1, s1, has2, s2);
        } else {
          ScaledRow(grad + src * dim, out, dim, j == begin, has1, s1, has2, s2);
        }
      }
    }
  });
}

void SparseGradRows(const fast::SparseRowsArgs& a) {
  if (a.groups == 0) return;
  visit_float_and_index(a.dtype, a.ids64,
                        [&](auto t, auto i) { SparseRowsTyped<decltype(t), decltype(i)>(a); });
}

}  // namespace emb::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace emb::detail {

HWY_EXPORT(SparseGradRows);

void fast::sparse_grad_rows_any(const SparseRowsArgs& a) {
  EMB_DISPATCH(SparseGradRows)(a);
}

}  // namespace emb::detail
#endif  // HWY_ONCE
