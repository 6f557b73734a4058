// Fast EmbeddingBag max: threads over ranges of bags; within a bag, a vector of running maxima
// and a vector of the winning positions (the position within the bag, mapped to its id at the
// end), updated where the new row is strictly larger, as the twin does element by element.
// Twin: ref::bag_max.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/bag_max.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <limits>

#include "kernels/dispatch.h"
#include "kernels/fast.h"
#include "kernels/parallel.h"
#include "kernels/simd-inl.h"
#include "kernels/visit.h"

HWY_BEFORE_NAMESPACE();
namespace emb::detail::HWY_NAMESPACE {

template <typename T, typename Index>
class BagMaxKernel {
 public:
  using A = Arith<T>;
  using D = hn::ScalableTag<A>;
  using DI = hn::RebindToSigned<D>;  // int32 lanes for float, int64 for double
  using I = hn::TFromD<DI>;
  using V = hn::Vec<D>;

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
    const DI di;
    const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
    const std::int64_t begin = bounds_[b];
    const std::int64_t end = bounds_[b + 1];
    T* o = out_ + b * dim_;
    std::int64_t* mi = max_indices_ + b * dim_;
    std::int64_t c = 0;
    // Positions within the bag must fit the index lanes; a longer bag takes the scalar loop.
    if (end - begin <= static_cast<std::int64_t>(std::numeric_limits<I>::max())) {
      for (; c + lanes <= dim_; c += lanes) {
        V best = hn::Zero(d);
        auto best_j = hn::Zero(di);
        bool any = false;
        for (std::int64_t i = begin; i < end; ++i) {
          if (c == 0) Prefetch(i);
          const std::int64_t k = ids_[i];
          if (k == pad_) continue;
          const V v = LoadWide(d, table_ + k * dim_ + c);
          const auto j = hn::Set(di, static_cast<I>(i - begin));
          if (!any) {
            best = v;
            best_j = j;
            any = true;
            continue;
          }
          const auto larger = hn::Gt(v, best);  // false for NaN on either side, as v > best
          best = hn::IfThenElse(larger, v, best);
          best_j = hn::IfThenElse(hn::RebindMask(di, larger), j, best_j);
        }
        HWY_ALIGN A vals[hn::MaxLanes(d)];
        HWY_ALIGN I pos[hn::MaxLanes(di)];
        hn::Store(best, d, vals);
        hn::Store(best_j, di, pos);
        for (std::int64_t l = 0; l < lanes; ++l) {
          o[c + l] = T(vals[l]);
          mi[c + l] = any ? static_cast<std::int64_t>(ids_[begin + pos[l]]) : 0;
        }
      }
    }
    for (; c < dim_; ++c) {  // the tail (or a huge bag), element by element as the twin
      bool first = true;
      A best = 0;
      std::int64_t best_k = 0;
      for (std::int64_t i = begin; i < end; ++i) {
        if (c == 0) Prefetch(i);
        const std::int64_t k = ids_[i];
        if (k == pad_) continue;
        const A v = A(table_[k * dim_ + c]);
        if (first || v > best) {
          best = v;
          best_k = k;
        }
        first = false;
      }
      o[c] = T(best);
      mi[c] = best_k;
    }
  }

 private:
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
    const BagMaxKernel<T, Index> kernel(a);
    const std::int64_t n = a.bounds[a.num_bags];
    parallel_ranges(a.num_bags, (n + a.num_bags) * a.dim,
                    [&](std::int64_t begin, std::int64_t end, int, int) {
                      for (std::int64_t b = begin; b < end; ++b) kernel.Bag(b);
                    });
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
