// Fast exact cosine neighbours: threads over ranges of rows, each keeping its own k best (a
// heap), merged at the end in the twin's total order (score, then row), so the result never
// depends on the thread count. A dot product runs 16 elements at a time in 16 / Lanes vectors
// holding the twin's 16 partial sums (element d in partial d % 16, product then sum), the tail
// and the fold as the twin does them. Rows streamed in order are prefetched a few rows ahead.
// Twins: ref::row_inverse_norms, ref::cosine_top_k.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/neighbors.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <queue>
#include <utility>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/fast.h"
#include "kernels/parallel.h"
#include "kernels/ref/neighbors_ref.h"
#include "kernels/simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace emb::detail::HWY_NAMESPACE {

// ref::dot16 with vectors.
HWY_INLINE float Dot16(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, std::int64_t dim) {
  const hn::CappedTag<float, ref::kDotPartials> d;
  constexpr std::size_t kLanes = hn::MaxLanes(d);
  constexpr std::size_t kVecs = ref::kDotPartials / kLanes;
  static_assert(kVecs * kLanes == ref::kDotPartials);
  using V = hn::Vec<decltype(d)>;
  V acc[kVecs];
  for (std::size_t v = 0; v < kVecs; ++v) acc[v] = hn::Zero(d);
  std::int64_t c = 0;
  for (; c + ref::kDotPartials <= dim; c += ref::kDotPartials) {
    for (std::size_t v = 0; v < kVecs; ++v) {
      const V x = hn::LoadU(d, a + c + v * kLanes);
      const V y = hn::LoadU(d, b + c + v * kLanes);
      acc[v] = hn::Add(acc[v], hn::Mul(x, y));
    }
  }
  HWY_ALIGN float p[ref::kDotPartials];
  for (std::size_t v = 0; v < kVecs; ++v) hn::Store(acc[v], d, p + v * kLanes);
  for (; c < dim; ++c) {
    const float prod = a[c] * b[c];
    p[c % ref::kDotPartials] = p[c % ref::kDotPartials] + prod;
  }
  return ref::fold_partials(p);
}

HWY_INLINE void PrefetchRow(const float* table, std::int64_t r, std::int64_t rows,
                            std::int64_t dim) {
  constexpr std::int64_t kAhead = 4;
  if (r + kAhead < rows) {
    PrefetchBytes(table + (r + kAhead) * dim, static_cast<std::size_t>(dim) * sizeof(float));
  }
}

void RowInverseNorms(const float* table, std::int64_t rows, std::int64_t dim, float* out) {
  parallel_ranges(rows, rows * dim, [&](std::int64_t begin, std::int64_t end, int, int) {
    for (std::int64_t r = begin; r < end; ++r) {
      const float* row = table + r * dim;
      out[r] = ref::inverse_norm(Dot16(row, row, dim));
    }
  });
}

void CosineTopK(const fast::CosineTopKArgs& a) {
  using Entry = std::pair<float, std::int64_t>;
  // The heap's top is the worst entry kept.
  const auto better = [](const Entry& x, const Entry& y) {
    return ref::ranks_before(x.first, x.second, y.first, y.second);
  };
  const std::int64_t k = std::min(a.k, a.rows);
  std::vector<std::vector<Entry>> kept;
  if (k > 0 && a.rows > 0) {
    const int threads = threads_for(a.rows * a.dim, a.rows);
    kept.resize(static_cast<std::size_t>(threads));
    parallel_ranges(a.rows, a.rows * a.dim, [&](std::int64_t begin, std::int64_t end, int t, int) {
      std::priority_queue<Entry, std::vector<Entry>, decltype(better)> heap(better);
      for (std::int64_t r = begin; r < end; ++r) {
        PrefetchRow(a.table, r, end, a.dim);
        if (r == a.exclude) continue;
        const float s = Dot16(a.table + r * a.dim, a.query, a.dim) * a.inv_norms[r];
        if (s != s) continue;  // NaN
        if (static_cast<std::int64_t>(heap.size()) < k) {
          heap.emplace(s, r);
        } else if (ref::ranks_before(s, r, heap.top().first, heap.top().second)) {
          heap.pop();
          heap.emplace(s, r);
        }
      }
      std::vector<Entry>& mine = kept[static_cast<std::size_t>(t)];
      mine.reserve(heap.size());
      while (!heap.empty()) {
        mine.push_back(heap.top());
        heap.pop();
      }
    });
  }
  std::vector<Entry> all;
  for (const auto& v : kept) all.insert(all.end(), v.begin(), v.end());
  const auto n = std::min<std::int64_t>(k, static_cast<std::int64_t>(all.size()));
  std::partial_sort(all.begin(), all.begin() + n, all.end(), better);
  for (std::int64_t i = 0; i < n; ++i) {
    a.scores[i] = all[static_cast<std::size_t>(i)].first;
    a.ids[i] = all[static_cast<std::size_t>(i)].second;
  }
  *a.found = std::max<std::int64_t>(n, 0);
}

}  // namespace emb::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace emb::detail {

HWY_EXPORT(RowInverseNorms);
HWY_EXPORT(CosineTopK);

void fast::row_inverse_norms(const float* table, std::int64_t rows, std::int64_t dim, float* out) {
  EMB_DISPATCH(RowInverseNorms)(table, rows, dim, out);
}

void fast::cosine_top_k(const CosineTopKArgs& a) {
  EMB_DISPATCH(CosineTopK)(a);
}

}  // namespace emb::detail
#endif  // HWY_ONCE
