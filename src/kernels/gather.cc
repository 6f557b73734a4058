// Fast forward lookup: out[i] = table[ids[i]], rows copied whole, threads over ranges of ids, the
// rows kPrefetchAhead ids ahead requested early (a lookup in a big table is a chain of cache
// misses; prefetching keeps several in flight). An output of fast::kStreamBytes or more is
// written with non-temporal stores (see below). Twin: ref::gather_rows.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/gather.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/fast.h"
#include "kernels/parallel.h"
#include "kernels/simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace emb::detail::HWY_NAMESPACE {

// An output of fast::kStreamBytes or more is written with streaming stores: on a cold table the
// gather then moves a third less memory traffic (on the AMD EPYC machines measured, a 256 MiB
// output at D = 64 and 2 threads: 14-21 ns per id with plain stores, 13 with streaming ones).

// Copies one row of `bytes` bytes (a multiple of the vector size) from `from` to `to` (aligned
// to the vector size) with streaming stores. Unrolled: for a fixed row size the copy is then a
// straight run of loads and stores, which measured faster than the loop with streaming stores.
HWY_INLINE void StreamRow(const std::byte* from, std::byte* to, std::size_t bytes) {
  const hn::ScalableTag<std::uint8_t> d;
  const std::size_t step = hn::Lanes(d);
  const auto* src = reinterpret_cast<const std::uint8_t*>(from);
  auto* dst = reinterpret_cast<std::uint8_t*>(to);
#pragma GCC unroll 16
  for (std::size_t off = 0; off < bytes; off += step) {
    hn::Stream(hn::LoadU(d, src + off), d, dst + off);
  }
}

// Whether the gather writes its output with StreamRow: a big output, vectors of 32 bytes or
// more (not the scalar fallback), the output aligned to them and every row a whole number of
// them.
bool UseStreamingStores(const fast::GatherArgs& a) {
  const hn::ScalableTag<std::uint8_t> d;
  const std::size_t vec = hn::Lanes(d);
  return vec >= 32 && static_cast<std::size_t>(a.n) * a.row_bytes >= fast::kStreamBytes &&
         a.row_bytes % vec == 0 && reinterpret_cast<std::uintptr_t>(a.out) % vec == 0;
}

// kBytes > 0: every row is kBytes long, so its copy and prefetch are a fixed run of
// instructions (no call into memcpy per row); 0: a.row_bytes. kStream: the rows are written by
// StreamRow (UseStreamingStores holds). False: some id was outside the table (a.num_rows
// given), its row not copied.
template <typename Index, std::size_t kBytes, bool kStream>
bool GatherTyped(const fast::GatherArgs& a) {
  const auto* ids = static_cast<const Index*>(a.ids);
  const std::size_t rb = kBytes > 0 ? kBytes : a.row_bytes;
  const std::uint64_t limit = IdLimit(a.num_rows);
  const auto work =
      static_cast<std::int64_t>(static_cast<std::size_t>(a.n) * (rb / 4 + 1));  // ~elements moved
  std::atomic<bool> bad{false};
  parallel_ranges(a.n, work, [&](std::int64_t begin, std::int64_t end, int, int) {
    // Locals, not the captures: the row copies' stores would make the compiler reload those.
    const std::byte* const table = a.table;
    std::byte* const out = a.out;
    const Index* const id = ids;
    const std::uint64_t lim = limit;
    const std::size_t bytes = rb;
    bool seen_bad = false;
    for (std::int64_t i = begin; i < end; ++i) {
      if (i + kPrefetchAhead < end) {
        PrefetchBytes(RowToPrefetch(table, id[i + kPrefetchAhead], bytes), bytes);
      }
      const std::int64_t k = id[i];
      if (static_cast<std::uint64_t>(k) < lim) [[likely]] {
        if constexpr (kStream) {
          StreamRow(table + static_cast<std::size_t>(k) * bytes,
                    out + static_cast<std::size_t>(i) * bytes, bytes);
        } else {
          std::memcpy(out + static_cast<std::size_t>(i) * bytes,
                      table + static_cast<std::size_t>(k) * bytes, bytes);
        }
      } else {
        seen_bad = true;
      }
    }
    // Streaming stores are weakly ordered: fence them before the thread's part is reported done.
    if constexpr (kStream) hwy::FlushStream();
    if (seen_bad) bad.store(true, std::memory_order_relaxed);
  });
  return !bad.load(std::memory_order_relaxed);
}

// The common row sizes (16 to 256 float32 elements) get their fixed-size loop.
template <typename Index, bool kStream>
bool GatherSized(const fast::GatherArgs& a) {
  switch (a.row_bytes) {
    case 64:
      return GatherTyped<Index, 64, kStream>(a);
    case 128:
      return GatherTyped<Index, 128, kStream>(a);
    case 256:
      return GatherTyped<Index, 256, kStream>(a);
    case 512:
      return GatherTyped<Index, 512, kStream>(a);
    case 1024:
      return GatherTyped<Index, 1024, kStream>(a);
    default:
      return GatherTyped<Index, 0, kStream>(a);
  }
}

template <typename Index>
bool GatherStreamingOrNot(const fast::GatherArgs& a) {
  return UseStreamingStores(a) ? GatherSized<Index, true>(a) : GatherSized<Index, false>(a);
}

bool GatherRows(const fast::GatherArgs& a) {
  if (a.n == 0) return true;
  if (a.row_bytes == 0) {  // nothing to copy; the ids are still checked when asked
    return a.num_rows < 0 || fast::ids_in_range(a.ids, a.ids64, a.n, a.num_rows);
  }
  return a.ids64 ? GatherStreamingOrNot<std::int64_t>(a) : GatherStreamingOrNot<std::int32_t>(a);
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

bool fast::gather_rows_any(const GatherArgs& a) {
  return EMB_DISPATCH(GatherRows)(a);
}

std::int64_t fast::dispatched_target() {
  return EMB_DISPATCH(TargetBits)();
}

}  // namespace emb::detail
#endif  // HWY_ONCE
