// Fast renorm (max_norm): the norm of each listed row and, where it is over max_norm, the row
// scaled. Threads own ranges of the (distinct) rows; rows a few ahead are prefetched. The 2-norm
// of float32 and bfloat16 rows, ATen's 8-lane fused sum of squares, is a vector of 8 lanes (two
// of 4 on 4-lane targets): each lane sees the twin's fused multiply-adds in the twin's order; the
// lanes and the tail are summed as the twin sums them. Other norms and dtypes use the twin's own
// row_norm. The scale multiplies float32/float64 rows as vectors (one rounding per element, as
// the twin). Twin: ref::renorm_rows.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/renorm.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cmath>

#include "kernels/dispatch.h"
#include "kernels/fast_sparse.h"
#include "kernels/parallel.h"
#include "kernels/ref/embedding_ref.h"
#include "kernels/simd-inl.h"
#include "kernels/visit.h"

HWY_BEFORE_NAMESPACE();
namespace emb::detail::HWY_NAMESPACE {

// ref::row_norm for p = 2 on float32 / bfloat16 rows.
template <typename T>
HWY_INLINE double Norm2(const T* row, std::int64_t dim) {
  constexpr std::int64_t kLanes = 8;
  constexpr std::int64_t kBlock = std::is_same_v<T, BFloat16> ? 2 * kLanes : kLanes;
  const hn::CappedTag<float, 8> d;
  const auto n = static_cast<std::int64_t>(hn::Lanes(d));
  if (n != 8 && n != 4) return ref::row_norm(row, dim, 2.0);
  auto lo = hn::Zero(d);  // lanes 0..n-1
  auto hi = hn::Zero(d);  // lanes 4..7 when n == 4
  std::int64_t c = 0;
  for (; c + kBlock <= dim; c += kBlock) {
    for (std::int64_t b = 0; b < kBlock; b += kLanes) {
      const auto x = LoadWide(d, row + c + b);
      lo = FusedMulAdd(d, x, x, lo);
      if (n == 4) {
        const auto y = LoadWide(d, row + c + b + 4);
        hi = FusedMulAdd(d, y, y, hi);
      }
    }
  }
  HWY_ALIGN float lanes[16];
  hn::Store(lo, d, lanes);
  if (n == 4) hn::Store(hi, d, lanes + 4);
  float acc = lanes[0];
  for (std::int64_t l = 1; l < kLanes; ++l) acc = acc + lanes[l];
  if (dim - c >= 4) {
    for (const std::int64_t end = c + 4; c < end; ++c) acc = acc + float(row[c]) * float(row[c]);
  }
  for (; c < dim; ++c) acc = std::fma(float(row[c]), float(row[c]), acc);
  return static_cast<double>(float(T(std::sqrt(acc))));
}

template <typename T>
HWY_INLINE double RowNorm(const T* row, std::int64_t dim, double norm_type) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, BFloat16>) {
    if (norm_type == 2.0) return Norm2(row, dim);
  }
  return ref::row_norm(row, dim, norm_type);
}

template <typename T>
HWY_INLINE void ScaleRow(T* row, std::int64_t dim, T scale) {
  const hn::ScalableTag<T> d;
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
  const auto vs = hn::Set(d, scale);
  std::int64_t c = 0;
  for (; c + lanes <= dim; c += lanes) hn::StoreU(hn::Mul(hn::LoadU(d, row + c), vs), d, row + c);
  for (; c < dim; ++c) row[c] = row[c] * scale;
}

template <typename T>
void RenormTyped(const fast::RenormArgs& a) {
  using A = Arith<T>;
  T* table = static_cast<T*>(a.table);
  const std::int64_t dim = a.dim;
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * sizeof(T);
  parallel_ranges(a.n, a.n * dim, [&](std::int64_t lo, std::int64_t hi, int, int) {
    for (std::int64_t i = lo; i < hi; ++i) {
      if (i + kPrefetchAhead < hi) PrefetchBytes(table + a.rows[i + kPrefetchAhead] * dim, row_bytes);
      T* row = table + a.rows[i] * dim;
      const double norm = RowNorm(row, dim, a.norm_type);
      if (!(norm > a.max_norm)) continue;
      const A scale = A(T(static_cast<A>(a.max_norm / (norm + 1e-7))));
      if constexpr (kIs16<T>) {
        for (std::int64_t c = 0; c < dim; ++c) row[c] = T(A(row[c]) * scale);
      } else {
        ScaleRow(row, dim, scale);
      }
    }
  });
}

void RenormRows(const fast::RenormArgs& a) {
  if (a.n == 0) return;
  visit_floating(a.dtype, [&](auto t) { RenormTyped<decltype(t)>(a); });
}

}  // namespace emb::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace emb::detail {

HWY_EXPORT(RenormRows);

void fast::renorm_rows_any(const RenormArgs& a) {
  EMB_DISPATCH(RenormRows)(a);
}

}  // namespace emb::detail
#endif  // HWY_ONCE
