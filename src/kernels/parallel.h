// Threads for the fast kernels: contiguous ranges of work items, one per thread, so that every
// item is computed by exactly the code a single thread would run (results never depend on the
// thread count). Small work runs on the calling thread without starting a parallel region.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "emb/runtime.h"
#include "runtime_internal.h"

namespace emb::detail {

/// How many threads a call over `work` elements uses: 1 .. get_num_threads().
inline int threads_for(std::int64_t work, std::int64_t items) {
  const std::int64_t by_work = std::max<std::int64_t>(1, work / min_work_per_thread());
  return static_cast<int>(
      std::max<std::int64_t>(1, std::min({std::int64_t{get_num_threads()}, by_work, items})));
}

/// Calls fn(begin, end, thread, num_threads) over [0, items) split into contiguous ranges, one per
/// thread; `work` (elements touched in all) decides how many threads are worth starting. Inside
/// a parallel region (a caller that splits the work itself) it runs on the calling thread.
///   parallel_ranges(8, 8 * 64, fn) with 2 threads -> fn(0, 4, 0, 2) and fn(4, 8, 1, 2)
template <typename Fn>
void parallel_ranges(std::int64_t items, std::int64_t work, Fn&& fn) {
  const int threads = threads_for(work, items);
  if (threads <= 1 || omp_in_parallel()) {
    fn(std::int64_t{0}, items, 0, 1);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    const int nt = omp_get_num_threads();
    const std::int64_t begin = items * t / nt;
    const std::int64_t end = items * (t + 1) / nt;
    fn(begin, end, t, nt);
  }
}

}  // namespace emb::detail
