// Per-target helpers of the fast kernels (included once per SIMD target by foreach_target).
// Vectors run across the elements of a row, so each element sees exactly the scalar twin's
// sequence of operations: SIMD never reorders an element's additions.

// Per-target include guard (Highway's convention for -inl headers).
#if defined(EMB_KERNELS_SIMD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef EMB_KERNELS_SIMD_INL_H_
#undef EMB_KERNELS_SIMD_INL_H_
#else
#define EMB_KERNELS_SIMD_INL_H_
#endif

#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "emb/dtype.h"

HWY_BEFORE_NAMESPACE();
namespace emb::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

/// Whether this target's MulAdd is one fused operation (else it rounds the product first).
#if (HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2) || HWY_ARCH_ARM_A64
inline constexpr bool kNativeFma = true;
#else
inline constexpr bool kNativeFma = false;
#endif

/// Whether this target converts float16 to float32 in hardware (F16C); Highway's emulation
/// elsewhere turns NaN into infinity, so those targets widen float16 lane by lane instead.
#if (HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2) || HWY_ARCH_ARM_A64
inline constexpr bool kNativeF16 = true;
#else
inline constexpr bool kNativeF16 = false;
#endif

/// The arithmetic type of an element type: float for float16/bfloat16.
template <typename T>
using Arith = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T>
inline constexpr bool kIs16 = std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;

/// Highway's lane type for a storage type.
template <typename T>
using HwyLane =
    std::conditional_t<std::is_same_v<T, Half>, hwy::float16_t,
                       std::conditional_t<std::is_same_v<T, BFloat16>, hwy::bfloat16_t, T>>;

/// Lanes(d) elements of p, widened to the arithmetic type (exact).
template <typename T, class D>
HWY_INLINE hn::Vec<D> LoadWide(D d, const T* p) {
  if constexpr (std::is_same_v<T, Half> && !kNativeF16) {
    HWY_ALIGN float lanes[hn::MaxLanes(d)];
    for (std::size_t l = 0; l < hn::Lanes(d); ++l) lanes[l] = float(p[l]);
    return hn::Load(d, lanes);
  } else if constexpr (kIs16<T>) {
    const hn::Rebind<HwyLane<T>, D> dh;
    return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const HwyLane<T>*>(p)));
  } else {
    return hn::LoadU(d, p);
  }
}

/// fma(a, b, c) with one rounding on every target (lane by lane where MulAdd would round twice).
template <class D>
HWY_INLINE hn::Vec<D> FusedMulAdd(D d, hn::Vec<D> a, hn::Vec<D> b, hn::Vec<D> c) {
  if constexpr (kNativeFma) {
    return hn::MulAdd(a, b, c);
  } else {
    using L = hn::TFromD<D>;
    HWY_ALIGN L la[hn::MaxLanes(d)];
    HWY_ALIGN L lb[hn::MaxLanes(d)];
    HWY_ALIGN L lc[hn::MaxLanes(d)];
    hn::Store(a, d, la);
    hn::Store(b, d, lb);
    hn::Store(c, d, lc);
    for (std::size_t l = 0; l < hn::Lanes(d); ++l) lc[l] = std::fma(la[l], lb[l], lc[l]);
    return hn::Load(d, lc);
  }
}

/// Asks for the cache line at p, for reading soon, into the outer caches (the x86 prefetcht1
/// hint): a row's lines then wait in the level-2 cache, whose many outstanding misses keep more
/// rows in flight than the level-1 cache's few fill buffers (on the AMD EPYC machines measured,
/// a prefetching bag sum of a cold table ran about 30% faster than with the level-1 hint).
HWY_INLINE void PrefetchLine(const void* p) {
  __builtin_prefetch(p, /*rw=*/0, /*locality=*/2);
}

/// Asks for the cache lines of `bytes` bytes at p (capped: the first 2 KiB of a row).
HWY_INLINE void PrefetchBytes(const void* p, std::size_t bytes) {
  const char* c = static_cast<const char*>(p);
  const std::size_t end = bytes < 2048 ? bytes : 2048;
  for (std::size_t off = 0; off < end; off += 64) PrefetchLine(c + off);
}

/// Row k of `row_bytes`-byte rows at base, as an address to prefetch: computed as an integer, so
/// that an id the kernel has not checked yet makes no out-of-bounds pointer (a prefetch of any
/// address is harmless).
HWY_INLINE const void* RowToPrefetch(const void* base, std::int64_t k, std::size_t row_bytes) {
  return reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(base) +
                                       static_cast<std::uintptr_t>(k) * row_bytes);
}

/// The bound an id, as unsigned, must stay below: num_rows, or (-1: ids already validated)
/// none.
HWY_INLINE std::uint64_t IdLimit(std::int64_t num_rows) {
  return num_rows < 0 ? ~std::uint64_t{0} : static_cast<std::uint64_t>(num_rows);
}

/// How many ids ahead the random-row loops prefetch.
inline constexpr std::int64_t kPrefetchAhead = 16;

}  // namespace emb::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // EMB_KERNELS_SIMD_INL_H_
