// The sweep of the fast-kernel tests: a check run on every SIMD target the CPU has, at 1, 2 and 3
// threads, over a list of row widths, with even small inputs split over threads. Restores the
// native target, the thread count and the work threshold afterwards.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "emb/runtime.h"
#include "runtime_internal.h"

namespace emb::test {

enum class SweepThreads {
  kEveryTarget,      // 1, 2 and 3 threads on every target
  kBestTargetOnly,   // 2 and 3 threads on the best target only (1 thread on every target)
};

/// body(dim, seed) for every dim, target and thread count; seed = dim * seed_step + threads.
template <typename Body>
void sweep_kernels(std::span<const std::int64_t> dims, Body&& body,
                   SweepThreads which = SweepThreads::kEveryTarget,
                   std::int64_t seed_step = 7919) {
  detail::set_min_work_per_thread(1);
  const int saved_threads = get_num_threads();
  const std::vector<std::string> targets = simd_targets_available();
  for (const std::string& target : targets) {
    set_simd_target(target);
    for (int threads : {1, 2, 3}) {
      if (threads > 1 && which == SweepThreads::kBestTargetOnly && target != targets.front()) {
        continue;
      }
      set_num_threads(threads);
      for (std::int64_t dim : dims) {
        SCOPED_TRACE("target=" + target + " threads=" + std::to_string(threads) +
                     " dim=" + std::to_string(dim));
        body(dim, static_cast<std::uint64_t>(dim * seed_step + threads));
      }
    }
  }
  set_simd_target("native");
  set_num_threads(saved_threads);
  detail::set_min_work_per_thread(std::int64_t{1} << 15);
}

}  // namespace emb::test
