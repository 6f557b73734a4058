// Fast EmbeddingBag sum and mean (with per_sample_weights and padding_idx): threads over ranges of
// bags; within a bag, blocks of up to 8 vectors (a row of more than 256 bytes and at most 8
// vectors: two blocks of half the row) accumulate the bag's rows in input order, in
// registers (each element sees the twin's additions in the twin's order), rows prefetched
// kPrefetchAhead ids ahead. Twins: ref::bag_sum, ref::bag_divide_by_size.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/bag_sum.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <atomic>
#include <cstdint>
#include <utility>

#include "kernels/dispatch.h"
#include "kernels/fast.h"
#include "kernels/parallel.h"
#include "kernels/simd-inl.h"
#include "kernels/visit.h"

HWY_BEFORE_NAMESPACE();
namespace emb::detail::HWY_NAMESPACE {

// How a row enters the accumulator.
enum Combine { kPlain, kFusedWeight, kUnfusedWeight };

template <typename T, typename Index, Combine kMode>
class BagSumKernel {
 public:
  using A = Arith<T>;
  using D = hn::ScalableTag<A>;
  using V = hn::Vec<D>;

  // bad: set when an id lies outside the table (a.num_rows given); its row is then not read.
  BagSumKernel(const fast::BagSumArgs& a, std::atomic<bool>* bad)
      : table_(static_cast<const T*>(a.table)),
        ids_(static_cast<const Index*>(a.ids)),
        bounds_(a.bounds),
        psw_(static_cast<const T*>(a.psw)),
        mean_sizes_(a.mean_sizes),
        out_(static_cast<T*>(a.out)),
        dim_(a.dim),
        pad_(a.padding_idx),
        n_(a.bounds[a.num_bags]),
        limit_(IdLimit(a.num_rows)),
        bad_(bad) {}

  void Bag(std::int64_t b) const {
    const D d;
    const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
    const std::int64_t begin = bounds_[b];
    const std::int64_t end = bounds_[b + 1];
    T* o = out_ + b * dim_;
    // Mode mean: the divisor as the twin rounds it; 0 = no division (sum, or an empty bag).
    A div = 0;
    if (mean_sizes_ && mean_sizes_[b] > 0) div = A(T(static_cast<A>(mean_sizes_[b])));
    // The row in blocks of up to kMaxVecs vectors, each block one pass over the bag with its
    // sums in registers (the first pass prefetches); then the elements past the last vector.
    std::int64_t c = 0;
    // A row of more than kOnePassBytes and at most one block of whole vectors (AVX-512: 80 to
    // 128 float32): two passes of half the row each.
    if (dim_ % lanes == 0 && dim_ <= kMaxVecs * lanes &&
        static_cast<std::size_t>(dim_) * sizeof(T) > kOnePassBytes) {
      const std::int64_t vecs = dim_ / lanes;
      const std::int64_t half = (vecs + 1) / 2;
      if (vecs == kMaxVecs) {
        Pass<kMaxVecs / 2, kMaxVecs>(d, begin, end, 0, div, o);
      } else {
        PassOf<kPrefetchRow>(half, d, begin, end, 0, div, o);
      }
      PassOf<kNoPrefetch>(vecs - half, d, begin, end, half * lanes, div, o);
      return;
    }
    // Rows of exactly 1, 2 or 4 blocks: the first pass prefetches the row as a fixed run of
    // instructions.
    if (dim_ == kMaxVecs * lanes) {
      Pass<kMaxVecs, kMaxVecs>(d, begin, end, 0, div, o);
      return;
    }
    if (dim_ == 2 * kMaxVecs * lanes || dim_ == 4 * kMaxVecs * lanes) {
      if (dim_ == 2 * kMaxVecs * lanes) {
        Pass<kMaxVecs, 2 * kMaxVecs>(d, begin, end, 0, div, o);
      } else {
        Pass<kMaxVecs, 4 * kMaxVecs>(d, begin, end, 0, div, o);
      }
      for (c = kMaxVecs * lanes; c < dim_; c += kMaxVecs * lanes) {
        Pass<kMaxVecs, kNoPrefetch>(d, begin, end, c, div, o);
      }
      return;
    }
    for (; c + kMaxVecs * lanes <= dim_; c += kMaxVecs * lanes) {
      if (c == 0) {
        Pass<kMaxVecs, kPrefetchRow>(d, begin, end, c, div, o);
      } else {
        Pass<kMaxVecs, kNoPrefetch>(d, begin, end, c, div, o);
      }
    }
    const std::int64_t vecs = (dim_ - c) / lanes;
    if (vecs > 0) {
      if (c == 0 && vecs * lanes == dim_) {
        PassOf<kPrefetchBlock>(vecs, d, begin, end, c, div, o);
        return;
      }
      if (c == 0) {
        PassOf<kPrefetchRow>(vecs, d, begin, end, c, div, o);
      } else {
        PassOf<kNoPrefetch>(vecs, d, begin, end, c, div, o);
      }
      c += vecs * lanes;
    }
    for (; c < dim_; ++c) {  // the tail, element by element as the twin
      A acc = 0;
      bool bad = false;
      for (std::int64_t i = begin; i < end; ++i) {
        if (c == 0) Prefetch(i);
        const std::int64_t k = ids_[i];
        if (static_cast<std::uint64_t>(k) >= limit_) [[unlikely]] {
          bad = true;
          continue;
        }
        if (k == pad_) continue;
        const A x = A(table_[k * dim_ + c]);
        if constexpr (kMode == kPlain) {
          acc = acc + x;
        } else if constexpr (kMode == kFusedWeight) {
          acc = std::fma(x, A(psw_[i]), acc);
        } else {
          acc = acc + x * A(psw_[i]);
        }
      }
      if (bad) MarkBad();
      o[c] = Round(acc, div);
    }
  }

 private:
  // Accumulators a pass keeps in registers (16 of AVX2's, half of AVX-512's).
  static constexpr std::int64_t kMaxVecs = 8;

  // The widest row summed in one pass over the bag when it is at most one block; a wider one
  // takes two passes of half the row. Measured on a cold 1 GiB table at 1 thread (AVX-512, AMD
  // EPYC, interleaved in one process, medians of 9): at D = 96, 112 and 128 float32 two passes
  // took 2-25% less time than one (22-46 against 30-53 ns per id; at D = 80 a tie), where the
  // loop of one pass stalled on its loads; at D = 256, two passes of 8 vectors beat four of 4
  // (51 against 56), and at D = 64 one pass of 256 bytes was as fast as two (AVX2: faster).
  static constexpr std::size_t kOnePassBytes = 256;

  // What a pass prefetches kPrefetchAhead ids ahead, as its kPrefetch argument: nothing (a later
  // pass over the same rows), the whole row, the whole row when it is exactly the pass's block, or
  // (any other positive value) the whole row when it is exactly that many vectors (its size then
  // known at compile time on fixed-width targets).
  static constexpr int kNoPrefetch = 0;
  static constexpr int kPrefetchRow = -1;
  static constexpr int kPrefetchBlock = -2;

  // Elements [c, c + kVecs * lanes) of bag [begin, end): kVecs sums over the bag's rows in input
  // order, each row's vectors loaded together, then rounded into o.
  template <int kVecs, int kPrefetch>
  HWY_INLINE void Pass(D d, std::int64_t begin, std::int64_t end, std::int64_t c, A div,
                       T* o) const {
    const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
    const T* table = table_ + c;
    const Index* ids = ids_;
    // The row width, a constant where the pass knows it (a shift, not a multiply, per row).
    constexpr int kRowVecs = kPrefetch > 0 ? kPrefetch : kPrefetch == kPrefetchBlock ? kVecs : 0;
#if HWY_HAVE_SCALABLE
    const std::int64_t dim = dim_;
#else
    const std::int64_t dim =
        kRowVecs > 0 ? std::int64_t{kRowVecs} * static_cast<std::int64_t>(hn::MaxLanes(d)) : dim_;
#endif
    const std::int64_t pad = pad_;
    const std::uint64_t limit = limit_;
    V a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
    V a4 = hn::Zero(d), a5 = hn::Zero(d), a6 = hn::Zero(d), a7 = hn::Zero(d);
    bool bad = false;  // reported after the loop: a store in it would keep the members in memory
    for (std::int64_t i = begin; i < end; ++i) {
      const std::int64_t k = ids[i];
      if (static_cast<std::uint64_t>(k) >= limit) [[unlikely]] {
        bad = true;
      } else if (k != pad) {
        const T* r = table + k * dim;
        const V w = Weight(d, i);
        a0 = Add(d, a0, LoadWide(d, r), w);
        if constexpr (kVecs > 1) a1 = Add(d, a1, LoadWide(d, r + lanes), w);
        if constexpr (kVecs > 2) a2 = Add(d, a2, LoadWide(d, r + 2 * lanes), w);
        if constexpr (kVecs > 3) a3 = Add(d, a3, LoadWide(d, r + 3 * lanes), w);
        if constexpr (kVecs > 4) a4 = Add(d, a4, LoadWide(d, r + 4 * lanes), w);
        if constexpr (kVecs > 5) a5 = Add(d, a5, LoadWide(d, r + 5 * lanes), w);
        if constexpr (kVecs > 6) a6 = Add(d, a6, LoadWide(d, r + 6 * lanes), w);
        if constexpr (kVecs > 7) a7 = Add(d, a7, LoadWide(d, r + 7 * lanes), w);
      }
      // After this row's loads, so that they do not wait behind requests for later rows.
      if constexpr (kPrefetch == kPrefetchRow) Prefetch(i);
      if constexpr (kPrefetch == kPrefetchBlock) PrefetchVecs<kVecs>(i);
      if constexpr (kPrefetch > 0) PrefetchVecs<kPrefetch>(i);
    }
    if (bad) MarkBad();
    Finish(d, a0, div, o + c);
    if constexpr (kVecs > 1) Finish(d, a1, div, o + c + lanes);
    if constexpr (kVecs > 2) Finish(d, a2, div, o + c + 2 * lanes);
    if constexpr (kVecs > 3) Finish(d, a3, div, o + c + 3 * lanes);
    if constexpr (kVecs > 4) Finish(d, a4, div, o + c + 4 * lanes);
    if constexpr (kVecs > 5) Finish(d, a5, div, o + c + 5 * lanes);
    if constexpr (kVecs > 6) Finish(d, a6, div, o + c + 6 * lanes);
    if constexpr (kVecs > 7) Finish(d, a7, div, o + c + 7 * lanes);
  }

  // Pass<vecs> for a run-time vecs in [1, kMaxVecs).
  template <int kPrefetch>
  HWY_INLINE void PassOf(std::int64_t vecs, D d, std::int64_t begin, std::int64_t end,
                         std::int64_t c, A div, T* o) const {
    switch (vecs) {
      case 1:
        return Pass<1, kPrefetch>(d, begin, end, c, div, o);
      case 2:
        return Pass<2, kPrefetch>(d, begin, end, c, div, o);
      case 3:
        return Pass<3, kPrefetch>(d, begin, end, c, div, o);
      case 4:
        return Pass<4, kPrefetch>(d, begin, end, c, div, o);
      case 5:
        return Pass<5, kPrefetch>(d, begin, end, c, div, o);
      case 6:
        return Pass<6, kPrefetch>(d, begin, end, c, div, o);
      default:
        return Pass<7, kPrefetch>(d, begin, end, c, div, o);
    }
  }

  // Prefetch() for a row of exactly kVecs vectors.
  template <int kVecs>
  HWY_INLINE void PrefetchVecs(std::int64_t i) const {
#if HWY_HAVE_SCALABLE
    Prefetch(i);
#else
    constexpr std::size_t kBytes = kVecs * hn::MaxLanes(D()) * sizeof(T);
    static_assert(kBytes <= 2048, "Prefetch() stops at 2 KiB");
    if (i + kPrefetchAhead < n_) {
      const auto* row =
          static_cast<const char*>(RowToPrefetch(table_, ids_[i + kPrefetchAhead], kBytes));
      PrefetchLines(row, std::make_index_sequence<(kBytes + 63) / 64>());
    }
#endif
  }

  // The lines row + 64 * kLine: a fixed run of prefetch instructions.
  template <std::size_t... kLine>
  static HWY_INLINE void PrefetchLines(const char* row, std::index_sequence<kLine...>) {
    (PrefetchLine(row + 64 * kLine), ...);
  }

  HWY_INLINE void Prefetch(std::int64_t i) const {
    if (i + kPrefetchAhead < n_) {
      const std::size_t row_bytes = static_cast<std::size_t>(dim_) * sizeof(T);
      PrefetchBytes(RowToPrefetch(table_, ids_[i + kPrefetchAhead], row_bytes), row_bytes);
    }
  }

  void MarkBad() const {
    bad_->store(true, std::memory_order_relaxed);
  }

  V Weight(D d, std::int64_t i) const {
    if constexpr (kMode == kPlain) {
      return hn::Zero(d);
    } else {
      return hn::Set(d, A(psw_[i]));
    }
  }

  // acc + x, fma(x, w, acc) or acc + x * w.
  static V Add(D d, V acc, V x, V w) {
    if constexpr (kMode == kPlain) {
      return hn::Add(acc, x);
    } else if constexpr (kMode == kFusedWeight) {
      return FusedMulAdd(d, x, w, acc);
    } else {
      return hn::Add(acc, hn::Mul(x, w));
    }
  }

  // T(acc), then mode mean's T(A(T(acc)) / div).
  static T Round(A acc, A div) {
    T v = T(acc);
    if (div != 0) v = T(A(v) / div);
    return v;
  }

  static void Finish(D d, V acc, A div, T* o) {
    if constexpr (kIs16<T>) {
      HWY_ALIGN A buf[hn::MaxLanes(d)];
      hn::Store(acc, d, buf);
      for (std::size_t l = 0; l < hn::Lanes(d); ++l) o[l] = Round(buf[l], div);
    } else {
      if (div != 0) acc = hn::Div(acc, hn::Set(d, div));
      hn::StoreU(acc, d, o);
    }
  }

  const T* table_;
  const Index* ids_;
  const std::int64_t* bounds_;
  const T* psw_;
  const std::int64_t* mean_sizes_;
  T* out_;
  std::int64_t dim_;
  std::int64_t pad_;
  std::int64_t n_;
  std::uint64_t limit_;
  std::atomic<bool>* bad_;
};

template <typename T, typename Index, Combine kMode>
bool BagSumTyped(const fast::BagSumArgs& a) {
  std::atomic<bool> bad{false};
  const BagSumKernel<T, Index, kMode> kernel(a, &bad);
  const std::int64_t n = a.bounds[a.num_bags];
  parallel_ranges(a.num_bags, (n + a.num_bags) * a.dim,
                  [&](std::int64_t begin, std::int64_t end, int, int) {
                    for (std::int64_t b = begin; b < end; ++b) kernel.Bag(b);
                  });
  return !bad.load(std::memory_order_relaxed);
}

bool BagSum(const fast::BagSumArgs& a) {
  if (a.num_bags == 0) return true;
  if (a.dim == 0) {  // nothing to read or write; the ids are still checked when asked
    return a.num_rows < 0 || fast::ids_in_range(a.ids, a.ids64, a.bounds[a.num_bags], a.num_rows);
  }
  return visit_float_and_index(a.dtype, a.ids64, [&](auto t, auto i) {
    using T = decltype(t);
    using Index = decltype(i);
    if (!a.psw) return BagSumTyped<T, Index, kPlain>(a);
    if (a.combine == fast::PswCombine::kFused) return BagSumTyped<T, Index, kFusedWeight>(a);
    return BagSumTyped<T, Index, kUnfusedWeight>(a);
  });
}

}  // namespace emb::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace emb::detail {

HWY_EXPORT(BagSum);

bool fast::bag_sum_any(const BagSumArgs& a) {
  return EMB_DISPATCH(BagSum)(a);
}

}  // namespace emb::detail
#endif  // HWY_ONCE
