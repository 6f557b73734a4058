// The fast kernels of row-wise quantized tables against their scalar ref twins, bit for bit: int8
// and int4, every SIMD target this CPU has at 1, 2 and 3 threads, dims around the vector widths,
// int32 and int64 ids, duplicates, empty bags, padding_idx, per-sample weights (the fused and the
// unfused rounding). Outputs sit between guard cells that must come back untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "emb/runtime.h"
#include "kernels/fast.h"
#include "kernels/ref/quant_ref.h"
#include "kernel_sweep.h"
#include "runtime_internal.h"

namespace {

using namespace emb;
namespace fast = emb::detail::fast;
namespace ref = emb::detail::ref;

constexpr std::int64_t kDims[] = {1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 64, 100, 129};
constexpr std::size_t kGuard = 16;
constexpr float kGuardValue = -12345.5f;

// n floats between guard cells.
struct Out {
  explicit Out(std::int64_t n) : buf(static_cast<std::size_t>(n) + 2 * kGuard, kGuardValue) {}
  float* data() { return buf.data() + kGuard; }
  bool guards_intact() const {
    for (std::size_t i = 0; i < kGuard; ++i) {
      if (buf[i] != kGuardValue || buf[buf.size() - 1 - i] != kGuardValue) return false;
    }
    return true;
  }
  std::vector<float> buf;
};

::testing::AssertionResult same(const Out& fast_out, const Out& ref_out) {
  if (!fast_out.guards_intact()) return ::testing::AssertionFailure() << "guard cells written";
  for (std::size_t i = 0; i < fast_out.buf.size(); ++i) {
    if (std::memcmp(&fast_out.buf[i], &ref_out.buf[i], sizeof(float)) != 0) {
      return ::testing::AssertionFailure()
             << "element " << static_cast<std::int64_t>(i) - static_cast<std::int64_t>(kGuard)
             << ": " << fast_out.buf[i] << " vs " << ref_out.buf[i];
    }
  }
  return ::testing::AssertionSuccess();
}

template <int Bits>
std::vector<std::uint8_t> random_table(std::mt19937_64& rng, std::int64_t rows, std::int64_t dim) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> magnitude(-3.0f, 3.0f);
  std::vector<float> w(static_cast<std::size_t>(rows * dim));
  for (std::int64_t r = 0; r < rows; ++r) {
    const float m = std::pow(10.0f, magnitude(rng));  // rows of magnitudes 1e-3 .. 1e3
    for (std::int64_t d = 0; d < dim; ++d)
      w[static_cast<std::size_t>(r * dim + d)] = m * normal(rng);
  }
  std::vector<std::uint8_t> q(static_cast<std::size_t>(rows * ref::quant_row_bytes<Bits>(dim)));
  ref::quantize_rows<Bits>(w.data(), rows, dim, q.data());
  return q;
}

template <typename Body>
void sweep(Body&& body) {
  test::sweep_kernels(kDims, body, test::SweepThreads::kEveryTarget, 131);
}

template <int Bits, typename Index>
void check_all(std::int64_t dim, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  constexpr std::int64_t kRows = 40, kBags = 25;
  const std::vector<std::uint8_t> table = random_table<Bits>(rng, kRows, dim);
  // Bags of 0 to 9 ids with duplicates; padding row 3 appears often.
  std::uniform_int_distribution<std::int64_t> row(0, kRows - 1), size(0, 9);
  std::vector<Index> ids;
  std::vector<std::int64_t> bounds{0};
  for (std::int64_t b = 0; b < kBags; ++b) {
    const std::int64_t s = size(rng);
    for (std::int64_t j = 0; j < s; ++j)
      ids.push_back(static_cast<Index>(j % 4 == 1 ? 3 : row(rng)));
    bounds.push_back(static_cast<std::int64_t>(ids.size()));
  }
  const auto n = static_cast<std::int64_t>(ids.size());
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> psw(static_cast<std::size_t>(n));
  for (auto& w : psw) w = normal(rng);

  {  // lookup, and the whole table (null ids)
    Out f(n * dim), r(n * dim);
    fast::quant_gather_rows<Bits>(table.data(), dim, ids.data(), n, f.data());
    ref::quant_gather_rows<Bits>(table.data(), dim, ids.data(), n, r.data());
    ASSERT_TRUE(same(f, r)) << "gather";
    Out fa(kRows * dim), ra(kRows * dim);
    fast::quant_gather_rows<Bits, Index>(table.data(), dim, nullptr, kRows, fa.data());
    ref::quant_gather_rows<Bits, Index>(table.data(), dim, nullptr, kRows, ra.data());
    ASSERT_TRUE(same(fa, ra)) << "dequantize";
  }
  for (std::int64_t pad : {std::int64_t{-1}, std::int64_t{3}}) {
    const float* const weights[] = {nullptr, psw.data()};
    for (const float* w : weights) {
      Out f(kBags * dim), r(kBags * dim);
      fast::quant_bag_sum<Bits>(table.data(), dim, ids.data(), bounds.data(), kBags, pad, w,
                                f.data());
      ref::quant_bag_sum<Bits>(table.data(), dim, ids.data(), bounds.data(), kBags, pad, w,
                               r.data());
      ASSERT_TRUE(same(f, r)) << "bag sum, padding_idx " << pad << (w ? ", weighted" : "");
    }
    Out f(kBags * dim), r(kBags * dim);
    fast::quant_bag_max<Bits>(table.data(), dim, ids.data(), bounds.data(), kBags, pad, f.data());
    ref::quant_bag_max<Bits>(table.data(), dim, ids.data(), bounds.data(), kBags, pad, r.data());
    ASSERT_TRUE(same(f, r)) << "bag max, padding_idx " << pad;
  }
}

TEST(QuantKernels, Int8FastEqualsRef) {
  sweep([](std::int64_t dim, std::uint64_t seed) {
    check_all<8, std::int64_t>(dim, seed);
    check_all<8, std::int32_t>(dim, seed + 1);
  });
}

TEST(QuantKernels, Int4FastEqualsRef) {
  sweep([](std::int64_t dim, std::uint64_t seed) {
    check_all<4, std::int64_t>(dim, seed);
    check_all<4, std::int32_t>(dim, seed + 1);
  });
}

TEST(QuantKernels, NoBagsOrZeroDimWriteNothing) {
  Out f(0);
  const std::vector<std::uint8_t> table(8, 0);
  const std::int64_t bounds[] = {0};
  fast::quant_bag_sum<8, std::int64_t>(table.data(), 0, nullptr, bounds, 0, -1, nullptr, f.data());
  fast::quant_bag_max<4, std::int64_t>(table.data(), 0, nullptr, bounds, 0, -1, f.data());
  fast::quant_gather_rows<8, std::int64_t>(table.data(), 0, nullptr, 0, f.data());
  EXPECT_TRUE(f.guards_intact());
}

}  // namespace
