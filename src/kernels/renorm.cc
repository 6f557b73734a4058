// Fast renorm (max_norm): the norm of each listed row and, where it is over max_norm, the row
// scaled. Threads own ranges of the (distinct) rows, or of the table's rows when the ids are
// visited against a bitmap (renorm_ids); rows a few ahead are prefetched. The 2-norm of float32
// and bfloat16 rows, ATen's 8-lane fused sum of squares, is a vector of 8 lanes (two of 4 on
// 4-lane targets): each lane sees the twin's fused multiply-adds in the twin's order; the lanes
// and the tail are summed as the twin sums them. Other norms and dtypes use the twin's own
// row_norm. The scale multiplies float32/float64 rows as vectors (one rounding per element, as
// the twin). Twins: ref::renorm_rows, ref::renorm_ids.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/renorm.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

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

// One row of the renorm: scaled when its norm is over max_norm.
template <typename T>
HWY_INLINE void RenormRow(T* row, std::int64_t dim, double max_norm, double norm_type) {
  using A = Arith<T>;
  const double norm = RowNorm(row, dim, norm_type);
  if (!(norm > max_norm)) return;
  const A scale = A(T(static_cast<A>(max_norm / (norm + 1e-7))));
  if constexpr (kIs16<T>) {
    for (std::int64_t c = 0; c < dim; ++c) row[c] = T(A(row[c]) * scale);
  } else {
    ScaleRow(row, dim, scale);
  }
}

template <typename T>
void RenormTyped(const fast::RenormArgs& a) {
  T* table = static_cast<T*>(a.table);
  const std::int64_t dim = a.dim;
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * sizeof(T);
  parallel_ranges(a.n, a.n * dim, [&](std::int64_t lo, std::int64_t hi, int, int) {
    for (std::int64_t i = lo; i < hi; ++i) {
      if (i + kPrefetchAhead < hi) {
        PrefetchBytes(table + a.rows[i + kPrefetchAhead] * dim, row_bytes);
      }
      RenormRow(table + a.rows[i] * dim, dim, a.max_norm, a.norm_type);
    }
  });
}

void RenormRows(const fast::RenormArgs& a) {
  if (a.n == 0) return;
  visit_floating(a.dtype, [&](auto t) { RenormTyped<decltype(t)>(a); });
}

// The rows of a range of 64-row words whose bits are set, in ascending order.
class SetBits {
 public:
  SetBits(const std::uint64_t* bits, std::int64_t word, std::int64_t end)
      : bits_(bits), word_(word), end_(end), left_(word < end ? bits[word] : 0) {}

  // The next row, or -1 after the last.
  std::int64_t Next() {
    while (left_ == 0) {
      if (++word_ >= end_) return -1;
      left_ = bits_[word_];
    }
    const std::int64_t row = word_ * 64 + std::countr_zero(left_);
    left_ &= left_ - 1;
    return row;
  }

 private:
  const std::uint64_t* bits_;
  std::int64_t word_;
  std::int64_t end_;
  std::uint64_t left_;
};

// The distinct ids from a bitmap of the rows, each thread owning a range of 64-row words: it
// marks the ids of its range, then renorms its marked rows in ascending order (the order of
// renorm_rows over sorted_unique_ids, whose row reads the memory serves fastest), a second
// cursor kPrefetchAhead rows ahead prefetching.
template <typename T, typename Index>
void RenormIdsBitmap(const fast::RenormIdsArgs& a) {
  const auto words = static_cast<std::int64_t>(static_cast<std::uint64_t>(a.num_rows) / 64 + 1);
  std::vector<std::uint64_t> marks(static_cast<std::size_t>(words), 0);
  T* const table = static_cast<T*>(a.table);
  const auto* const ids = static_cast<const Index*>(a.ids);
  const std::int64_t dim = a.dim;
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * sizeof(T);
  parallel_ranges(words, a.n * dim, [&](std::int64_t w_lo, std::int64_t w_hi, int, int) {
    std::uint64_t* const bits = marks.data();
    const std::int64_t lo = w_lo * 64;
    const std::int64_t hi = w_hi * 64;
    for (std::int64_t i = 0; i < a.n; ++i) {
      const std::int64_t k = ids[i];
      if (k >= lo && k < hi) bits[k >> 6] |= std::uint64_t{1} << (k & 63);
    }
    SetBits rows(bits, w_lo, w_hi);
    SetBits ahead(bits, w_lo, w_hi);
    for (std::int64_t j = 0; j < kPrefetchAhead; ++j) {
      const std::int64_t k = ahead.Next();
      if (k < 0) break;
      PrefetchBytes(table + k * dim, row_bytes);
    }
    for (std::int64_t k = rows.Next(); k >= 0; k = rows.Next()) {
      const std::int64_t next = ahead.Next();
      if (next >= 0) PrefetchBytes(table + next * dim, row_bytes);
      RenormRow(table + k * dim, dim, a.max_norm, a.norm_type);
    }
  });
}

template <typename Index>
std::vector<std::int64_t> SortedUnique(const fast::RenormIdsArgs& a) {
  return fast::sorted_unique_ids(static_cast<const Index*>(a.ids), a.n, a.num_rows);
}

void RenormIds(const fast::RenormIdsArgs& a) {
  if (a.n == 0 || a.dim == 0) return;
  // The bitmap pays from 64 ids on, where it is no larger than the ids (num_rows / 64 words).
  if (a.n >= 64 && a.num_rows / 64 <= a.n) {
    visit_float_and_index(a.dtype, a.ids64,
                          [&](auto t, auto i) { RenormIdsBitmap<decltype(t), decltype(i)>(a); });
    return;
  }
  const std::vector<std::int64_t> rows =
      a.ids64 ? SortedUnique<std::int64_t>(a) : SortedUnique<std::int32_t>(a);
  RenormRows({a.dtype, a.table, a.dim, rows.data(), static_cast<std::int64_t>(rows.size()),
              a.max_norm, a.norm_type});
}

}  // namespace emb::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace emb::detail {

HWY_EXPORT(RenormRows);
HWY_EXPORT(RenormIds);

void fast::renorm_rows_any(const RenormArgs& a) {
  EMB_DISPATCH(RenormRows)(a);
}

void fast::renorm_ids_any(const RenormIdsArgs& a) {
  EMB_DISPATCH(RenormIds)(a);
}

}  // namespace emb::detail
#endif  // HWY_ONCE
