// emb/runtime.h — how the kernels run: the thread count and the SIMD target. Results never depend
// on either: every op gives the same bits whatever the threads and the target.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace emb {

/// Sets the number of threads the kernels may use (each call still runs on one thread when its
/// work is small). Throws ValueError unless n >= 1.
///   emb::set_num_threads(2);
void set_num_threads(int n);

/// The number of threads the kernels may use: the last set_num_threads(), else the environment's
/// EMB_NUM_THREADS, else OMP_NUM_THREADS (its first entry), else the cores this process may run
/// on. Throws ValueError when the environment variable read is not a positive integer.
int get_num_threads();

/// The SIMD target the kernels run on, in lower case: "avx3" (AVX-512), "avx2", "sse4", "neon",
/// ..., or "scalar" (portable code without vector instructions). Chosen once: the environment's
/// EMB_SIMD when set, else the best target the CPU supports. Throws ValueError when EMB_SIMD names
/// an unknown target or one that this CPU or this build does not have.
std::string simd_target();

/// The targets this build has and this CPU supports, best first: {"avx3", "avx2", "sse4",
/// "scalar"}.
std::vector<std::string> simd_targets_available();

/// Pins the SIMD target ("scalar", "sse4", "avx2", "avx3" or "native" for the best one), as
/// EMB_SIMD does. Throws ValueError for an unknown or unavailable target; nothing changes then.
void set_simd_target(std::string_view name);

/// Returns to the OS the blocks of memory emb keeps for reuse: the last few (at most 8) big
/// tensors that it allocates every step of a loop (a dense gradient of 4 MiB and more written
/// densely; from 1 MiB on, the outputs of embedding() and embedding_bag() with their auxiliary
/// outputs, a sparse gradient's ids and values, the per-sample-weight gradient), kept when they
/// are freed so that the next one of about the same size is written in place instead of faulted
/// in afresh. Safe to call at any time; the tensors alive are not affected.
void release_cached_memory();

}  // namespace emb
