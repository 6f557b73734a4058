// Fast gradient of per_sample_weights: out[i] = dot(grad[b], table[ids[i]]) for position i of bag
// b, each dot in the twin's order (left to right over the row). A dot is a chain of dependent
// roundings, so the dots run side by side instead: on SIMD targets one position per lane (the
// table rows of a group of positions transposed in registers, block by block; the grad row
// broadcast when the group shares a bag, else transposed too), two groups at once; elsewhere, and
// for the float16/bfloat16 dots rounded at each step, 4 scalar dots (8 when they share a bag). Each
// lane or accumulator sees exactly the twin's sequence of operations. Threads over ranges of
// positions, table rows prefetched kPrefetchAhead positions ahead. The bag of a position comes
// from the bounds (a cursor walking them with the positions), not from an offset2bag array.
// Twin: ref::bag_per_sample_weights_backward (given offset2bag).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/psw_backward.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/fast.h"
#include "kernels/parallel.h"
#include "kernels/simd-inl.h"
#include "kernels/visit.h"

HWY_BEFORE_NAMESPACE();
namespace emb::detail::HWY_NAMESPACE {

// Whether this target runs one position's dot per SIMD lane (transposes in registers); the
// scalar and emulated targets keep the scalar dots.
#undef EMB_PSW_LANES
#if HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128 && !HWY_HAVE_SCALABLE
#define EMB_PSW_LANES 1
#else
#define EMB_PSW_LANES 0
#endif

// How many positions' dots run side by side: kWidth in general, 2 * kWidth when they share one
// bag (and so one row of grad).
inline constexpr std::int64_t kWidth = 4;

template <typename T, typename Index, fast::PswDot kDot>
class PswBackwardKernel {
 public:
  using A = Arith<T>;

  explicit PswBackwardKernel(const fast::PswBackwardArgs& a)
      : grad_(static_cast<const T*>(a.grad)),
        table_(static_cast<const T*>(a.table)),
        ids_(static_cast<const Index*>(a.ids)),
        bounds_(a.bounds),
        num_bags_(a.num_bags),
        out_(static_cast<T*>(a.out)),
        dim_(a.dim),
        pad_(a.padding_idx) {}

  // out[i] for i in [begin, end).
  void Range(std::int64_t begin, std::int64_t end) const {
    // The bag of position begin: the last bag starting at or before it (empty bags skipped).
    std::int64_t b = std::upper_bound(bounds_, bounds_ + num_bags_ + 1, begin) - bounds_ - 1;
    std::int64_t i = begin;
#if EMB_PSW_LANES
    if constexpr (kLaneDots) {
      for (; i + 2 * kLanes <= end; i += 2 * kLanes) Lanes<2>(i, b, end);
      if (i + kLanes <= end) {
        Lanes<1>(i, b, end);
        i += kLanes;
      }
    }
#endif
    for (; i + 2 * kWidth <= end; i += 2 * kWidth) {
      for (std::int64_t l = 0; l < 2 * kWidth; ++l) Prefetch(i + l, end);
      Advance(i, b);
      if (i + 2 * kWidth <= bounds_[b + 1]) {  // all in bag b
        OneBag(i, grad_ + b * dim_);
      } else {
        Interleaved(i, b);
        Interleaved(i + kWidth, b);
      }
    }
    for (; i + kWidth <= end; i += kWidth) {
      for (std::int64_t l = 0; l < kWidth; ++l) Prefetch(i + l, end);
      Interleaved(i, b);
    }
    for (; i < end; ++i) {
      Prefetch(i, end);
      const std::int64_t k = ids_[i];
      const T* g = Grad(i, b);
      A acc = 0;
      if (k != pad_) {
        const T* w = table_ + k * dim_;
        for (std::int64_t d = 0; d < dim_; ++d) acc = Step(acc, g[d], w[d]);
      }
      out_[i] = T(acc);
    }
  }

 private:
#if EMB_PSW_LANES
  using D = hn::CappedTag<A, 32 / sizeof(A)>;
  using V = hn::Vec<D>;
  static constexpr std::int64_t kLanes = static_cast<std::int64_t>(hn::MaxLanes(D()));
  // The lanes hold the twin's sums exactly: 16-bit types rounded each step stay scalar.
  static constexpr bool kLaneDots = kDot != fast::PswDot::kRoundEachStep || !kIs16<T>;

  // out[i + l] for l in [0, kGroups * kLanes), one position per lane: at each element d of the
  // rows, lane l adds grad[bag(i + l)][d] * table[ids[i + l]][d] to its own sum, in the twin's
  // order. The table's columns come from kLanes rows transposed in registers; the grad's column
  // is one broadcast when a group's positions share a bag, else transposed as the table's. The
  // groups' sums are independent chains that overlap (the loops over the groups unrolled, so
  // that the sums stay in registers). The rows of the positions kPrefetchAhead further on (at
  // most end - 1) are prefetched a line at a time as the blocks reach each line of these rows,
  // spread over the work instead of all of a row's lines at once: a burst of 16 rows' lines
  // before the group kept the loop waiting on its prefetch instructions (perf: a third of the
  // samples on them; 75 ns per id against 55 spread, 48-51 with the groups unrolled too, D = 128,
  // 1 GiB table, 1 thread).
  // b: the bag cursor.
  template <int kGroups>
  HWY_INLINE void Lanes(std::int64_t i, std::int64_t& b, std::int64_t end) const {
    const D d;
    const std::size_t row_bytes = static_cast<std::size_t>(dim_) * sizeof(T);
    std::uintptr_t ahead[kGroups][kLanes];  // the rows to prefetch, as integers
    for (int k = 0; k < kGroups; ++k) {
      HWY_UNROLL(8)
      for (std::int64_t l = 0; l < kLanes; ++l) {
        const std::int64_t p = std::min(i + k * kLanes + l + kPrefetchAhead, end - 1);
        ahead[k][l] = reinterpret_cast<std::uintptr_t>(RowToPrefetch(table_, ids_[p], row_bytes));
      }
    }
    const T* g[kGroups][kLanes];
    const T* w[kGroups][kLanes];
    bool one_bag[kGroups];
    V acc[kGroups];
    for (int k = 0; k < kGroups; ++k) {
      const std::int64_t first = i + k * kLanes;
      Advance(first, b);
      one_bag[k] = first + kLanes <= bounds_[b + 1];
      HWY_UNROLL(8)
      for (std::int64_t l = 0; l < kLanes; ++l) {
        g[k][l] = one_bag[k] ? grad_ + b * dim_ : Grad(first + l, b);
        w[k][l] = Row(first + l, g[k][l]);
      }
      acc[k] = hn::Zero(d);
    }
    std::size_t asked = 0;  // bytes of the rows ahead prefetched so far
    std::int64_t c = 0;
    for (; c + kLanes <= dim_; c += kLanes) {
      if (asked < static_cast<std::size_t>(c + kLanes) * sizeof(T)) {
        PrefetchAhead<kGroups>(ahead, asked);
        asked += 64;
      }
      HWY_UNROLL(4)
      for (int k = 0; k < kGroups; ++k) acc[k] = Block(d, acc[k], g[k], w[k], one_bag[k], c);
    }
    for (; asked < row_bytes; asked += 64) PrefetchAhead<kGroups>(ahead, asked);
    if (row_bytes != 0) PrefetchAhead<kGroups>(ahead, row_bytes - 1);  // a misaligned row's end
    HWY_ALIGN A lane[kLanes];
    for (int k = 0; k < kGroups; ++k) {
      for (std::int64_t e = c; e < dim_; ++e) {  // past the last whole block, lane by lane
        HWY_ALIGN A lg[kLanes];
        HWY_UNROLL(8)
        for (std::int64_t l = 0; l < kLanes; ++l) {
          lg[l] = A(g[k][l][e]);
          lane[l] = A(w[k][l][e]);
        }
        acc[k] = LaneStep(d, acc[k], hn::Load(d, lg), hn::Load(d, lane));
      }
      hn::Store(acc[k], d, lane);
      HWY_UNROLL(8)
      for (std::int64_t l = 0; l < kLanes; ++l) Finish(i + k * kLanes + l, lane[l]);
    }
  }

  // The line at byte `offset` of each row in `rows`.
  template <int kGroups>
  static HWY_INLINE void PrefetchAhead(const std::uintptr_t (&rows)[kGroups][kLanes],
                                       std::size_t offset) {
    for (int k = 0; k < kGroups; ++k) {
      HWY_UNROLL(8)
      for (std::int64_t l = 0; l < kLanes; ++l) {
        PrefetchLine(reinterpret_cast<const void*>(rows[k][l] + offset));
      }
    }
  }

  // The sums acc advanced over elements [c, c + kLanes) of the rows g (grad) and w (table).
  static HWY_INLINE V Block(D d, V acc, const T* const* g, const T* const* w, bool one_bag,
                            std::int64_t c) {
    V wc[kLanes];
    HWY_UNROLL(8)
    for (std::int64_t l = 0; l < kLanes; ++l) wc[l] = LoadWide(d, w[l] + c);
    Transpose(d, wc);
    if (one_bag) {
      const T* gb = g[0] + c;
      HWY_UNROLL(8)
      for (std::int64_t t = 0; t < kLanes; ++t) {
        acc = LaneStep(d, acc, hn::Set(d, A(gb[t])), wc[t]);
      }
    } else {
      V gc[kLanes];
      HWY_UNROLL(8)
      for (std::int64_t l = 0; l < kLanes; ++l) gc[l] = LoadWide(d, g[l] + c);
      Transpose(d, gc);
      HWY_UNROLL(8)
      for (std::int64_t t = 0; t < kLanes; ++t) acc = LaneStep(d, acc, gc[t], wc[t]);
    }
    return acc;
  }

  // acc + g * w in the dot's rounding, lane by lane.
  static HWY_INLINE V LaneStep(D d, V acc, V g, V w) {
    if constexpr (kDot == fast::PswDot::kFused) {
      return FusedMulAdd(d, g, w, acc);
    } else {
      return hn::Add(acc, hn::Mul(g, w));
    }
  }

  // Transposes the kLanes x kLanes block in v (v[r] lane c -> v[c] lane r).
  static HWY_INLINE void Transpose(D d, V* v) {
    if constexpr (sizeof(A) == 4) {  // pairs of 32-bit lanes interleaved first
      V t[kLanes];
      HWY_UNROLL(8)
      for (std::int64_t r = 0; r < kLanes; r += 2) {
        t[r] = hn::InterleaveLower(d, v[r], v[r + 1]);
        t[r + 1] = hn::InterleaveUpper(d, v[r], v[r + 1]);
      }
      // t[2p + h] holds rows 2p and 2p + 1 of columns 2h and 2h + 1 of each 128-bit block.
      const hn::Repartition<std::uint64_t, D> d64;
      HWY_UNROLL(8)
      for (std::int64_t q = 0; q < kLanes; q += 4) {
        HWY_UNROLL(8)
        for (std::int64_t h = 0; h < 2; ++h) {
          const auto a = hn::BitCast(d64, t[q + h]);
          const auto c = hn::BitCast(d64, t[q + 2 + h]);
          v[q + 2 * h] = hn::BitCast(d, hn::InterleaveLower(d64, a, c));
          v[q + 2 * h + 1] = hn::BitCast(d, hn::InterleaveUpper(d64, a, c));
        }
      }
      // Now v[4p + k] (k = column within a 128-bit block) holds rows 4p .. 4p + 3 of columns k
      // and k + 4 (128-bit blocks): 8 lanes need one more step, across the halves.
      if constexpr (kLanes == 8) {
        V o[kLanes];
        HWY_UNROLL(8)
        for (std::int64_t k = 0; k < 4; ++k) {
          o[k] = hn::ConcatLowerLower(d, v[4 + k], v[k]);
          o[k + 4] = hn::ConcatUpperUpper(d, v[4 + k], v[k]);
        }
        HWY_UNROLL(8)
        for (std::int64_t k = 0; k < kLanes; ++k) v[k] = o[k];
      }
    } else {  // 64-bit lanes
      V t[kLanes];
      HWY_UNROLL(8)
      for (std::int64_t r = 0; r < kLanes; r += 2) {
        t[r] = hn::InterleaveLower(d, v[r], v[r + 1]);
        t[r + 1] = hn::InterleaveUpper(d, v[r], v[r + 1]);
      }
      if constexpr (kLanes == 4) {
        HWY_UNROLL(8)
        for (std::int64_t h = 0; h < 2; ++h) {
          v[h] = hn::ConcatLowerLower(d, t[2 + h], t[h]);
          v[h + 2] = hn::ConcatUpperUpper(d, t[2 + h], t[h]);
        }
      } else {
        HWY_UNROLL(8)
        for (std::int64_t k = 0; k < kLanes; ++k) v[k] = t[k];
      }
    }
  }
#endif

  // Moves the bag cursor b (the bag of a position before i) to the bag of position i.
  HWY_INLINE void Advance(std::int64_t i, std::int64_t& b) const {
    while (bounds_[b + 1] <= i) ++b;
  }

  // out[i + l] for l in [0, kWidth): the dots advance together, element by element (named
  // accumulators and rows, so that they stay in registers). b: the bag cursor.
  void Interleaved(std::int64_t i, std::int64_t& b) const {
    const T* g0 = Grad(i, b);
    const T* g1 = Grad(i + 1, b);
    const T* g2 = Grad(i + 2, b);
    const T* g3 = Grad(i + 3, b);
    const T* w0 = Row(i, g0);
    const T* w1 = Row(i + 1, g1);
    const T* w2 = Row(i + 2, g2);
    const T* w3 = Row(i + 3, g3);
    A a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (std::int64_t d = 0; d < dim_; ++d) {
      a0 = Step(a0, g0[d], w0[d]);
      a1 = Step(a1, g1[d], w1[d]);
      a2 = Step(a2, g2[d], w2[d]);
      a3 = Step(a3, g3[d], w3[d]);
    }
    Finish(i, a0);
    Finish(i + 1, a1);
    Finish(i + 2, a2);
    Finish(i + 3, a3);
  }

  // out[i + l] for l in [0, 2 * kWidth), positions of one bag, whose row of grad is g.
  void OneBag(std::int64_t i, const T* g) const {
    const T* w0 = Row(i, g);
    const T* w1 = Row(i + 1, g);
    const T* w2 = Row(i + 2, g);
    const T* w3 = Row(i + 3, g);
    const T* w4 = Row(i + 4, g);
    const T* w5 = Row(i + 5, g);
    const T* w6 = Row(i + 6, g);
    const T* w7 = Row(i + 7, g);
    A a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    for (std::int64_t d = 0; d < dim_; ++d) {
      const T x = g[d];
      a0 = Step(a0, x, w0[d]);
      a1 = Step(a1, x, w1[d]);
      a2 = Step(a2, x, w2[d]);
      a3 = Step(a3, x, w3[d]);
      a4 = Step(a4, x, w4[d]);
      a5 = Step(a5, x, w5[d]);
      a6 = Step(a6, x, w6[d]);
      a7 = Step(a7, x, w7[d]);
    }
    Finish(i, a0);
    Finish(i + 1, a1);
    Finish(i + 2, a2);
    Finish(i + 3, a3);
    Finish(i + 4, a4);
    Finish(i + 5, a5);
    Finish(i + 6, a6);
    Finish(i + 7, a7);
  }

  // The row of grad of position i's bag; moves the bag cursor b to it.
  HWY_INLINE const T* Grad(std::int64_t i, std::int64_t& b) const {
    Advance(i, b);
    return grad_ + b * dim_;
  }

  // Position i's table row; for a padding position any readable row (its result is dropped).
  const T* Row(std::int64_t i, const T* g) const {
    const std::int64_t k = ids_[i];
    return k == pad_ ? g : table_ + k * dim_;
  }

  void Finish(std::int64_t i, A acc) const {
    out_[i] = static_cast<std::int64_t>(ids_[i]) == pad_ ? T(A(0)) : T(acc);
  }

  // One step of the twin's dot: acc + g * w in the dot's rounding.
  static A Step(A acc, T g, T w) {
    if constexpr (kDot == fast::PswDot::kFused) {
      return std::fma(A(g), A(w), acc);
    } else if constexpr (kDot == fast::PswDot::kUnfused || !kIs16<T>) {
      return acc + A(g) * A(w);
    } else {  // a 16-bit type in its own arithmetic
      return A(T(acc + A(T(A(g) * A(w)))));
    }
  }

  // Inlined early: g++ drops a prefetch left in a helper of its own (it deems the helper pure).
  // Once per row: a second prefetch of each row, kPrefetchAhead / 2 positions later (for a page
  // the first one found missing from the TLB), had the loop waiting on its prefetch instructions
  // (perf) and cost 10-25% on the huge-page tables measured.
  HWY_INLINE void Prefetch(std::int64_t i, std::int64_t end) const {
    if (i + kPrefetchAhead < end) {
      PrefetchBytes(table_ + static_cast<std::int64_t>(ids_[i + kPrefetchAhead]) * dim_,
                    static_cast<std::size_t>(dim_) * sizeof(T));
    }
  }

  const T* grad_;
  const T* table_;
  const Index* ids_;
  const std::int64_t* bounds_;  // [num_bags_ + 1]
  std::int64_t num_bags_;
  T* out_;
  std::int64_t dim_;
  std::int64_t pad_;
};

template <typename T, typename Index, fast::PswDot kDot>
void PswBackwardTyped(const fast::PswBackwardArgs& a) {
  const PswBackwardKernel<T, Index, kDot> kernel(a);
  const std::int64_t n = a.bounds[a.num_bags];
  parallel_ranges(n, n * a.dim, [&](std::int64_t begin, std::int64_t end, int, int) {
    kernel.Range(begin, end);
  });
}

void PswBackward(const fast::PswBackwardArgs& a) {
  if (a.bounds[a.num_bags] == 0) return;
  visit_float_and_index(a.dtype, a.ids64, [&](auto t, auto i) {
    using T = decltype(t);
    using Index = decltype(i);
    if (a.dot == fast::PswDot::kFused) {
      PswBackwardTyped<T, Index, fast::PswDot::kFused>(a);
    } else if (a.dot == fast::PswDot::kUnfused) {
      PswBackwardTyped<T, Index, fast::PswDot::kUnfused>(a);
    } else {
      PswBackwardTyped<T, Index, fast::PswDot::kRoundEachStep>(a);
    }
  });
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
