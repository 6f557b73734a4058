#include "dense_ops.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "dense_ops.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstddef>

HWY_BEFORE_NAMESPACE();
namespace emb_cli::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Eight partial sums on every target, held as 8 / N vectors of N lanes (N = 8, 4 or 1), so the
// order of additions is the same everywhere.
float Dot(const float* a, const float* b, std::int64_t n) {
  const hn::CappedTag<float, 8> d;
  constexpr std::size_t N = hn::MaxLanes(d);
  static_assert(N == 1 || N == 2 || N == 4 || N == 8, "8 partial sums need 8 / N vectors");
  alignas(32) float s[8] = {};
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (std::size_t k = 0; k < 8; k += N) {
      const auto acc = hn::Load(d, s + k);
      hn::Store(hn::Add(acc, hn::Mul(hn::LoadU(d, a + i + k), hn::LoadU(d, b + i + k))), d, s + k);
    }
  }
  if (i < n) {  // the tail, zero-padded: every partial sum gets a product, 0 * 0 past the end
    alignas(32) float ta[8] = {};
    alignas(32) float tb[8] = {};
    for (std::int64_t k = 0; i + k < n; ++k) {
      ta[k] = a[i + k];
      tb[k] = b[i + k];
    }
    for (std::size_t k = 0; k < 8; k += N) {
      const auto acc = hn::Load(d, s + k);
      hn::Store(hn::Add(acc, hn::Mul(hn::Load(d, ta + k), hn::Load(d, tb + k))), d, s + k);
    }
  }
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

void Axpy2(float g, const float* y, float* x, const float* v, float* u, std::int64_t n) {
  const hn::ScalableTag<float> d;
  const auto N = static_cast<std::int64_t>(hn::Lanes(d));
  const auto vg = hn::Set(d, g);
  std::int64_t i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(hn::Add(hn::LoadU(d, x + i), hn::Mul(vg, hn::LoadU(d, y + i))), d, x + i);
    hn::StoreU(hn::Add(hn::LoadU(d, u + i), hn::Mul(vg, hn::LoadU(d, v + i))), d, u + i);
  }
  for (; i < n; ++i) {  // this file is compiled with -ffp-contract=off: never fused
    x[i] = x[i] + g * y[i];
    u[i] = u[i] + g * v[i];
  }
}

}  // namespace emb_cli::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace emb_cli {

HWY_EXPORT(Dot);
HWY_EXPORT(Axpy2);

float dot(const float* a, const float* b, std::int64_t n) {
  return HWY_DYNAMIC_DISPATCH(Dot)(a, b, n);
}

void axpy2(float g, const float* y, float* x, const float* v, float* u, std::int64_t n) {
  HWY_DYNAMIC_DISPATCH(Axpy2)(g, y, x, v, u, n);
}

float dot_ref(const float* a, const float* b, std::int64_t n) {
  float s[8] = {};
  const std::int64_t padded = (n + 7) / 8 * 8;  // the SIMD tail adds 0 * 0 to the unused sums
  for (std::int64_t i = 0; i < padded; ++i) {
    const float p = i < n ? a[i] * b[i] : 0.0f * 0.0f;
    s[i % 8] = s[i % 8] + p;
  }
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

void axpy2_ref(float g, const float* y, float* x, const float* v, float* u, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    const float py = g * y[i];
    x[i] = x[i] + py;
    const float pv = g * v[i];
    u[i] = u[i] + pv;
  }
}

int for_each_dense_target(void (*f)(void* ctx), void* ctx) {
  int ran = 0;
  for (const std::int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    f(ctx);
    ++ran;
  }
  hwy::SetSupportedTargetsForTest(0);
  return ran;
}

}  // namespace emb_cli
#endif  // HWY_ONCE
