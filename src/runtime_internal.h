// The library-internal side of emb/runtime.h: what the kernels and the tests reach.
#pragma once

#include <cstddef>
#include <cstdint>

namespace emb::detail {

/// The index into a HWY_EXPORT table of the chosen target (resolves EMB_SIMD on first use; throws
/// ValueError for a bad value, before any kernel ran).
std::size_t simd_dispatch_index();

/// Resolves the thread count and the SIMD target now (reading the environment if nothing was set
/// yet): throws ValueError for a bad EMB_NUM_THREADS / OMP_NUM_THREADS / EMB_SIMD. Ops that write
/// before their first fast kernel call it first, so that a bad setting changes nothing.
void resolve_runtime_settings();

/// Below this many elements of work per thread a call stays on one thread (32768; tests lower it
/// to run small inputs on several threads).
std::int64_t min_work_per_thread();
void set_min_work_per_thread(std::int64_t elements);

/// Forgets the thread count and target chosen so far: the next use reads EMB_NUM_THREADS /
/// OMP_NUM_THREADS and EMB_SIMD again (for tests of the environment variables).
void reset_runtime_settings();

}  // namespace emb::detail
