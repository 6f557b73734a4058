// Thread count and SIMD target: the process-wide settings of the fast kernels.
#include "emb/runtime.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>

#include "emb/error.h"
#include "kernels/dispatch.h"

namespace emb {

namespace {

std::atomic<int> g_threads{0};          // 0: not resolved yet
std::atomic<std::int64_t> g_target{0};  // a single HWY_* bit; 0: not resolved yet
std::atomic<std::int64_t> g_min_work{std::int64_t{1} << 15};

// Parses a positive thread count; "4,2" (an OMP_NUM_THREADS list) -> 4.
int parse_threads(const char* var, const char* text) {
  std::string s(text);
  s = s.substr(0, s.find(','));
  char* end = nullptr;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < 1 || v > 4096) {
    throw ValueError(std::string(var) + "=" + text +
                     ": expected a positive number of threads (1 to 4096)");
  }
  return static_cast<int>(v);
}

struct TargetName {
  const char* name;
  std::int64_t bits;
};

// The targets a name may pin, best first; only those in HWY_TARGETS are compiled in this build.
constexpr TargetName kTargets[] = {
#if HWY_ARCH_X86
    {"avx3_dl", HWY_AVX3_DL},
    {"avx3", HWY_AVX3},
    {"avx2", HWY_AVX2},
    {"sse4", HWY_SSE4},
    {"ssse3", HWY_SSSE3},
#elif HWY_ARCH_ARM
    {"sve2", HWY_SVE2},
    {"sve", HWY_SVE},
    {"neon", HWY_NEON},
#endif
    {"scalar", HWY_EMU128 | HWY_SCALAR},
};

std::int64_t available_bits() {
  return hwy::SupportedTargets() & HWY_TARGETS;
}

std::int64_t best_target() {
  const std::int64_t bits = available_bits();
  return bits & -bits;  // the lowest bit is the best target
}

std::string name_of(std::int64_t bit) {
  for (const TargetName& t : kTargets) {
    if (t.bits & bit) return t.name;
  }
  return "unknown";
}

std::string available_list() {
  std::string s;
  for (const std::string& n : simd_targets_available()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// The HWY_* bit a name pins; throws ValueError naming `what` for an unknown or unavailable one.
std::int64_t resolve_target(std::string_view name, const std::string& what) {
  if (name == "native" || name == "best") return best_target();
  for (const TargetName& t : kTargets) {
    if (name != t.name) continue;
    const std::int64_t bit = available_bits() & t.bits;
    if (bit == 0) {
      throw ValueError(what +
                       ": the target is not available on this CPU or in this build "
                       "(available: " +
                       available_list() + ")");
    }
    return bit & -bit;
  }
  throw ValueError(what + ": unknown SIMD target (expected native or one of " + available_list() +
                   ")");
}

std::int64_t chosen_target() {
  std::int64_t t = g_target.load(std::memory_order_relaxed);
  if (t != 0) return t;
  const char* env = std::getenv("EMB_SIMD");
  t = env && *env ? resolve_target(env, std::string("EMB_SIMD=") + env) : best_target();
  std::int64_t expected = 0;
  g_target.compare_exchange_strong(expected, t);
  return g_target.load();
}

}  // namespace

void set_num_threads(int n) {
  if (n < 1) {
    throw ValueError("set_num_threads: n = " + std::to_string(n) + " must be at least 1");
  }
  g_threads.store(n);
}

int get_num_threads() {
  int n = g_threads.load(std::memory_order_relaxed);
  if (n != 0) return n;
  if (const char* env = std::getenv("EMB_NUM_THREADS"); env && *env) {
    n = parse_threads("EMB_NUM_THREADS", env);
  } else if (const char* omp = std::getenv("OMP_NUM_THREADS"); omp && *omp) {
    n = parse_threads("OMP_NUM_THREADS", omp);
  } else {
    n = std::max(1, omp_get_num_procs());
  }
  int expected = 0;
  g_threads.compare_exchange_strong(expected, n);
  return g_threads.load();
}

std::string simd_target() {
  return name_of(chosen_target());
}

std::vector<std::string> simd_targets_available() {
  std::vector<std::string> out;
  const std::int64_t bits = available_bits();
  for (const TargetName& t : kTargets) {
    if (bits & t.bits) out.emplace_back(t.name);
  }
  return out;
}

void set_simd_target(std::string_view name) {
  g_target.store(resolve_target(name, "set_simd_target(\"" + std::string(name) + "\")"));
}

void detail::reset_runtime_settings() {
  g_threads.store(0);
  g_target.store(0);
}

std::int64_t detail::min_work_per_thread() {
  return g_min_work.load(std::memory_order_relaxed);
}

void detail::set_min_work_per_thread(std::int64_t elements) {
  g_min_work.store(std::max<std::int64_t>(1, elements));
}

void detail::resolve_runtime_settings() {
  get_num_threads();
  chosen_target();
}

std::size_t detail::simd_dispatch_index() {
  get_num_threads();  // resolved here too, so that no kernel can throw once it has started
  const std::int64_t target = chosen_target();
  return static_cast<std::size_t>(hwy::Num0BitsBelowLS1Bit_Nonzero64(
      static_cast<std::uint64_t>((HWY_CHOSEN_TARGET_SHIFT(target) | HWY_CHOSEN_TARGET_MASK_SCALAR) &
                                 HWY_CHOSEN_TARGET_MASK_TARGETS)));
}

}  // namespace emb
