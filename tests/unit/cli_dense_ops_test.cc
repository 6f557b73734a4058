// The emb tool's output-layer loops (tools/emb/dense_ops.h) give the same bits on every SIMD
// target as their plain one-element-at-a-time definitions, for every length around the vector
// widths and for values that make the order of additions visible.
#include "dense_ops.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstdio>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace {

std::vector<float> random_values(std::mt19937_64& rng, std::int64_t n) {
  // Wide exponents so that rounding depends on the order of additions; some signed zeros.
  std::uniform_real_distribution<float> mant(-1.0f, 1.0f);
  std::uniform_int_distribution<int> expo(-20, 20);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = (rng() % 17 == 0) ? -0.0f : std::ldexp(mant(rng), expo(rng));
  return v;
}

struct Case {
  int mismatches = 0;
  int checked = 0;
  std::uint64_t seed = 0;
};

void run_all_lengths(void* ctx) {
  auto& c = *static_cast<Case*>(ctx);
  std::mt19937_64 rng(c.seed);
  for (std::int64_t n = 0; n <= 70; ++n) {
    const auto a = random_values(rng, n);
    const auto b = random_values(rng, n);
    const float want = emb_cli::dot_ref(a.data(), b.data(), n);
    const float got = emb_cli::dot(a.data(), b.data(), n);
    c.mismatches += std::bit_cast<std::uint32_t>(want) != std::bit_cast<std::uint32_t>(got);
    ++c.checked;

    const float g = random_values(rng, 1)[0];
    auto x1 = random_values(rng, n), u1 = random_values(rng, n);
    auto x2 = x1, u2 = u1;
    emb_cli::axpy2_ref(g, a.data(), x1.data(), b.data(), u1.data(), n);
    emb_cli::axpy2(g, a.data(), x2.data(), b.data(), u2.data(), n);
    for (std::int64_t i = 0; i < n; ++i) {
      const auto k = static_cast<std::size_t>(i);
      c.mismatches += std::bit_cast<std::uint32_t>(x1[k]) != std::bit_cast<std::uint32_t>(x2[k]);
      c.mismatches += std::bit_cast<std::uint32_t>(u1[k]) != std::bit_cast<std::uint32_t>(u2[k]);
      c.checked += 2;
    }
  }
}

TEST(CliDenseOps, EveryTargetEqualsThePlainLoops) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    Case c;
    c.seed = seed;
    const int targets = emb_cli::for_each_dense_target(run_all_lengths, &c);
    EXPECT_GE(targets, 1);
    if (seed == 1) std::printf("%d SIMD targets checked\n", targets);
    EXPECT_EQ(c.mismatches, 0) << "seed " << seed << ", " << c.checked << " values checked";
  }
}

TEST(CliDenseOps, DotIsEightPartialSums) {
  // 1e8 + 1 - 1e8 in one running sum gives 0 in float; with the terms in different partial
  // sums the 1 survives: this pins the documented order, not just agreement with the ref.
  std::vector<float> a(16, 0.0f), b(16, 1.0f);
  a[0] = 1e8f;
  a[1] = 1.0f;
  a[8] = -1e8f;
  EXPECT_EQ(emb_cli::dot(a.data(), b.data(), 16), 1.0f);
  EXPECT_EQ(emb_cli::dot_ref(a.data(), b.data(), 16), 1.0f);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  a[5] = nan;
  EXPECT_TRUE(std::isnan(emb_cli::dot(a.data(), b.data(), 16)));
}

}  // namespace
