// Fast forward lookup: out[i] = table[ids[i]], rows copied whole, threads over ranges of ids, the
// rows kPrefetchAhead ids ahead requested early (a lookup in a big table is a chain of cache
// misses; prefetching keeps several in flight). Twin: ref::gather_rows.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/gather.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/fast.h"
#include "kernels/parallel.h"
#include "kernels/simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace emb::detail::HWY_NAMESPACE {

template <typename Index>
void GatherTyped(const fast::GatherArgs& a) {
  const auto* ids = static_cast<const Index*>(a.ids);
  const std::size_t rb = a.row_bytes;
  const auto work =
      static_cast<std::int64_t>(static_cast<std::size_t>(a.n) * (rb / 4 + 1));  // ~elements moved
  parallel_ranges(a.n, work, [&](std::int64_t begin, std::int64_t end, int, int) {
    for (std::int64_t i = begin; i < end; ++i) {
      if (i + kPrefetchAhead < end) {
        PrefetchBytes(a.table + static_cast<std::size_t>(ids[i + kPrefetchAhead]) * rb, rb);
      }
      std::memcpy(a.out + static_cast<std::size_t>(i) * rb,
                  a.table + static_cast<std::size_t>(ids[i]) * rb, rb);
    }
  });
}

void GatherRows(const fast::GatherArgs& a) {
  if (a.row_bytes == 0 || a.n == 0) return;
  if (a.ids64) {
    GatherTyped<std::int64_t>(a);
  } else {
    GatherTyped<std::int32_t>(a);
  }
}

std::int64_t TargetBits() {
  return HWY_TARGET;
}

}  // namespace emb::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace emb::detail {

HWY_EXPORT(GatherRows);
HWY_EXPORT(TargetBits);

void fast::gather_rows_any(const GatherArgs& a) {
  EMB_DISPATCH(GatherRows)(a);
}

std::int64_t fast::dispatched_target() {
  return EMB_DISPATCH(TargetBits)();
}

}  // namespace emb::detail
#endif  // HWY_ONCE
