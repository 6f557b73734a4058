// Fast EmbeddingBag max: threads over ranges of bags; within a bag, blocks of up to 4 x Lanes
// elements, each a vector of running maxima and a vector of winners, started from the bag's first
// non-padding row and replaced where a later row is strictly larger, as the twin does element by
// element (a NaN wins only when it comes first). A winner is the id itself where it fits the
// index lanes, else its position within the bag, mapped to the id once at the end; without
// max_indices (null) no winner is kept. Rows are prefetched kPrefetchAhead ids ahead.
// Twin: ref::bag_max.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/bag_max.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstddef>
#include <limits>
#include <type_traits>

#include "kernels/dispatch.h"
#include "kernels/fast.h"
#include "kernels/parallel.h"
#include "kernels/simd-inl.h"
#include "kernels/visit.h"

HWY_BEFORE_NAMESPACE();
namespace emb::detail::HWY_NAMESPACE {

// kIndices: whether the winners are kept and written to max_indices.
template <typename T, typename Index, bool kIndices>
class BagMaxKernel {
 public:
  using A = Arith<T>;
  using D = hn::ScalableTag<A>;
  using DI = hn::RebindToSigned<D>;  // int32 lanes for float, int64 for double
  using I = hn::TFromD<DI>;
  using V = hn::Vec<D>;
  using VI = hn::Vec<DI>;
  using D64 = hn::ScalableTag<std::int64_t>;
  using DI32 = hn::Rebind<std::int32_t, D64>;  // as many int32 lanes as D64 has int64 lanes

  // Whether the winners' lanes hold the ids themselves (else their positions within the bag).
  static constexpr bool kIdsInLanes = sizeof(Index) <= sizeof(I);

  explicit BagMaxKernel(const fast::BagMaxArgs& a)
      : table_(static_cast<const T*>(a.table)),
        ids_(static_cast<const Index*>(a.ids)),
        bounds_(a.bounds),
        out_(static_cast<T*>(a.out)),
        max_indices_(a.max_indices),
        dim_(a.dim),
        pad_(a.padding_idx),
        n_(a.bounds[a.num_bags]) {}

  void Bag(std::int64_t b) const {
    const D d;
    const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
    const std::int64_t begin = bounds_[b];
    const std::int64_t end = bounds_[b + 1];
    T* o = out_ + b * dim_;
    std::int64_t* mi = kIndices ? max_indices_ + b * dim_ : nullptr;
    // The first non-padding position starts every element's maximum.
    std::int64_t first = begin;
    for (; first < end; ++first) {
      Prefetch(first);
      if (static_cast<std::int64_t>(ids_[first]) != pad_) break;
    }
    if (first == end) {  // empty or all padding: 0 and 0
      for (std::int64_t c = 0; c < dim_; ++c) {
        o[c] = T(A(0));
        if constexpr (kIndices) mi[c] = 0;
      }
      return;
    }
    std::int64_t c = 0;
    // Positions must fit the index lanes; a longer bag takes the element-by-element loop.
    if (kIdsInLanes || end - begin <= static_cast<std::int64_t>(std::numeric_limits<I>::max())) {
      for (; c + 4 * lanes <= dim_; c += 4 * lanes) Block<4>(begin, first, end, c, o, mi);
      switch ((dim_ - c) / lanes) {
        case 3:
          Block<3>(begin, first, end, c, o, mi);
          break;
        case 2:
          Block<2>(begin, first, end, c, o, mi);
          break;
        case 1:
          Block<1>(begin, first, end, c, o, mi);
          break;
        default:
          break;
      }
      c += (dim_ - c) / lanes * lanes;
    }
    for (; c < dim_; ++c) {  // the tail (or a huge bag), element by element as the twin
      A best = A(table_[static_cast<std::int64_t>(ids_[first]) * dim_ + c]);
      std::int64_t best_k = ids_[first];
      for (std::int64_t i = first + 1; i < end; ++i) {
        if (c == 0) Prefetch(i);
        const std::int64_t k = ids_[i];
        if (k == pad_) continue;
        const A v = A(table_[k * dim_ + c]);
        if (v > best) {
          best = v;
          best_k = k;
        }
      }
      o[c] = T(best);
      if constexpr (kIndices) mi[c] = best_k;
    }
  }

 private:
  // Elements [c, c + N * Lanes) of the bag [begin, end) whose first non-padding position is first.
  template <int N>
  void Block(std::int64_t begin, std::int64_t first, std::int64_t end, std::int64_t c, T* o,
             std::int64_t* mi) const {
    const D d;
    const DI di;
    const std::size_t lanes = hn::Lanes(d);
    // Named vectors (not arrays) so that they stay in registers; those past N go unused.
    const T* r = table_ + static_cast<std::int64_t>(ids_[first]) * dim_ + c;
    V b0 = LoadWide(d, r), b1 = b0, b2 = b0, b3 = b0;
    if constexpr (N > 1) b1 = LoadWide(d, r + lanes);
    if constexpr (N > 2) b2 = LoadWide(d, r + 2 * lanes);
    if constexpr (N > 3) b3 = LoadWide(d, r + 3 * lanes);
    const VI j0 = Winner(di, begin, first);
    VI w0 = j0, w1 = j0, w2 = j0, w3 = j0;
    for (std::int64_t i = first + 1; i < end; ++i) {
      if (c == 0) Prefetch(i);
      const std::int64_t k = ids_[i];
      if (k == pad_) continue;
      r = table_ + k * dim_ + c;
      const VI j = kIndices ? Winner(di, begin, i) : j0;
      Update(di, LoadWide(d, r), j, b0, w0);
      if constexpr (N > 1) Update(di, LoadWide(d, r + lanes), j, b1, w1);
      if constexpr (N > 2) Update(di, LoadWide(d, r + 2 * lanes), j, b2, w2);
      if constexpr (N > 3) Update(di, LoadWide(d, r + 3 * lanes), j, b3, w3);
    }
    StoreValues(d, b0, o + c);
    if constexpr (N > 1) StoreValues(d, b1, o + c + lanes);
    if constexpr (N > 2) StoreValues(d, b2, o + c + 2 * lanes);
    if constexpr (N > 3) StoreValues(d, b3, o + c + 3 * lanes);
    if constexpr (kIndices) {
      StoreIds(di, w0, begin, mi + c);
      if constexpr (N > 1) StoreIds(di, w1, begin, mi + c + lanes);
      if constexpr (N > 2) StoreIds(di, w2, begin, mi + c + 2 * lanes);
      if constexpr (N > 3) StoreIds(di, w3, begin, mi + c + 3 * lanes);
    }
  }

  // Where x > best (false for NaN on either side, as the twin's x > best): best = x, win = j.
  static HWY_INLINE void Update(DI di, V x, VI j, V& best, VI& win) {
    const auto larger = hn::Gt(x, best);
    best = hn::IfThenElse(larger, x, best);
    if constexpr (kIndices) win = hn::IfThenElse(hn::RebindMask(di, larger), j, win);
  }

  // What a winner's lanes hold for position i: ids[i], or i - begin.
  HWY_INLINE VI Winner(DI di, std::int64_t begin, std::int64_t i) const {
    if constexpr (kIdsInLanes) {
      return hn::Set(di, static_cast<I>(ids_[i]));
    } else {
      return hn::Set(di, static_cast<I>(i - begin));
    }
  }

  static void StoreValues(D d, V best, T* o) {
    if constexpr (kIs16<T>) {
      HWY_ALIGN A vals[hn::MaxLanes(d)];
      hn::Store(best, d, vals);
      for (std::size_t l = 0; l < hn::Lanes(d); ++l) o[l] = T(vals[l]);
    } else {
      hn::StoreU(best, d, o);
    }
  }

  // mi[l] = the id of winner l (int64).
  void StoreIds(DI di, VI win, std::int64_t begin, std::int64_t* mi) const {
    if constexpr (std::is_same_v<I, std::int64_t>) {  // double: the ids themselves
      hn::StoreU(win, di, mi);
    } else {
      const D64 d64;
      const DI32 d32;
      HWY_ALIGN std::int32_t lane[hn::MaxLanes(di)];
      hn::Store(win, di, lane);
      if constexpr (kIdsInLanes) {
        for (std::size_t l = 0; l < hn::Lanes(di); l += hn::Lanes(d64)) {
          hn::StoreU(hn::PromoteTo(d64, hn::LoadU(d32, lane + l)), d64, mi + l);
        }
      } else {  // positions within the bag: their ids
        for (std::size_t l = 0; l < hn::Lanes(di); ++l) mi[l] = ids_[begin + lane[l]];
      }
    }
  }

  // Inlined early: g++ drops a prefetch left in a helper of its own (it deems the helper pure).
  HWY_INLINE void Prefetch(std::int64_t i) const {
    if (i + kPrefetchAhead < n_) {
      PrefetchBytes(table_ + static_cast<std::int64_t>(ids_[i + kPrefetchAhead]) * dim_,
                    static_cast<std::size_t>(dim_) * sizeof(T));
    }
  }

  const T* table_;
  const Index* ids_;
  const std::int64_t* bounds_;
  T* out_;
  std::int64_t* max_indices_;
  std::int64_t dim_;
  std::int64_t pad_;
  std::int64_t n_;
};

void BagMax(const fast::BagMaxArgs& a) {
  if (a.num_bags == 0 || a.dim == 0) return;
  visit_float_and_index(a.dtype, a.ids64, [&](auto t, auto i) {
    using T = decltype(t);
    using Index = decltype(i);
    const std::int64_t n = a.bounds[a.num_bags];
    const auto run = [&](const auto& kernel) {
      parallel_ranges(a.num_bags, (n + a.num_bags) * a.dim,
                      [&](std::int64_t begin, std::int64_t end, int, int) {
                        for (std::int64_t b = begin; b < end; ++b) kernel.Bag(b);
                      });
    };
    if (a.max_indices) {
      run(BagMaxKernel<T, Index, true>(a));
    } else {
      run(BagMaxKernel<T, Index, false>(a));
    }
  });
}

}  // namespace emb::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace emb::detail {

HWY_EXPORT(BagMax);

void fast::bag_max_any(const BagMaxArgs& a) {
  EMB_DISPATCH(BagMax)(a);
}

}  // namespace emb::detail
#endif  // HWY_ONCE
