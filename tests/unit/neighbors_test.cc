// Exact cosine neighbours: the fast kernels against their scalar ref twins bit for bit (every
// SIMD target this CPU has, 1, 2 and 3 threads, dims around the vector widths, zero rows, tied
// rows, NaN rows), and the public functions against an independent double-precision brute force.
#include "emb/neighbors.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "emb/error.h"
#include "emb/runtime.h"
#include "kernels/fast.h"
#include "kernels/ref/neighbors_ref.h"
#include "kernel_sweep.h"
#include "runtime_internal.h"

namespace {

using namespace emb;
namespace fast = emb::detail::fast;
namespace ref = emb::detail::ref;

constexpr std::int64_t kDims[] = {1, 3, 8, 15, 16, 17, 33, 100, 129};
constexpr std::int64_t kRows[] = {1, 7, 300};

// Rows of normal values; with `specials`: an all-zero row, a row equal to another (a tie), a row
// scaled by 2 (the same cosine), and a NaN row.
std::vector<float> random_table(std::mt19937_64& rng, std::int64_t rows, std::int64_t dim,
                                bool specials) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> t(static_cast<std::size_t>(rows * dim));
  for (auto& x : t) x = normal(rng);
  if (specials && rows >= 7) {
    std::fill(t.begin() + 1 * dim, t.begin() + 2 * dim, 0.0f);
    std::copy(t.begin() + 2 * dim, t.begin() + 3 * dim, t.begin() + 4 * dim);
    for (std::int64_t d = 0; d < dim; ++d) t[static_cast<std::size_t>(5 * dim + d)] = 2 * t[d];
    t[static_cast<std::size_t>(6 * dim)] = std::numeric_limits<float>::quiet_NaN();
  }
  return t;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

template <typename Body>
void sweep(Body&& body) {
  test::sweep_kernels(kDims, body);
}

TEST(NeighborsKernels, FastEqualsRefBitForBit) {
  sweep([](std::int64_t dim, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    for (std::int64_t rows : kRows) {
      const std::vector<float> table = random_table(rng, rows, dim, true);
      std::vector<float> inv_ref(static_cast<std::size_t>(rows));
      std::vector<float> inv_fast(static_cast<std::size_t>(rows), -1.0f);
      ref::row_inverse_norms(table.data(), rows, dim, inv_ref.data());
      fast::row_inverse_norms(table.data(), rows, dim, inv_fast.data());
      ASSERT_TRUE(same_bits(inv_fast, inv_ref)) << "rows=" << rows;
      std::vector<float> query(table.begin(), table.begin() + dim);
      const float qinv = ref::inverse_norm(ref::dot16(query.data(), query.data(), dim));
      for (auto& x : query) x *= qinv;
      for (std::int64_t k : {std::int64_t{1}, std::int64_t{5}, rows + 2}) {
        for (std::int64_t exclude : {std::int64_t{-1}, std::int64_t{0}, rows - 1}) {
          const auto cap = static_cast<std::size_t>(std::min(k, rows));
          std::vector<std::int64_t> ids_ref(cap, -7), ids_fast(cap, -7);
          std::vector<float> s_ref(cap, -7.0f), s_fast(cap, -7.0f);
          std::int64_t found_ref = -1, found_fast = -1;
          ref::cosine_top_k(table.data(), rows, dim, inv_ref.data(), query.data(), k, exclude,
                            ids_ref.data(), s_ref.data(), &found_ref);
          fast::cosine_top_k({table.data(), rows, dim, inv_ref.data(), query.data(), k, exclude,
                              ids_fast.data(), s_fast.data(), &found_fast});
          ASSERT_EQ(found_fast, found_ref) << "rows=" << rows << " k=" << k;
          ASSERT_EQ(ids_fast, ids_ref) << "rows=" << rows << " k=" << k << " ex=" << exclude;
          ASSERT_TRUE(same_bits(s_fast, s_ref)) << "rows=" << rows << " k=" << k;
        }
      }
    }
  });
}

TEST(NeighborsKernels, NaNRowsExcludedZeroRowsScoreZero) {
  std::mt19937_64 rng(5);
  const std::int64_t rows = 7, dim = 16;
  const std::vector<float> table = random_table(rng, rows, dim, true);
  const Tensor t = Tensor::from_vector(table, {rows, dim});
  const Tensor inv = row_inverse_norms(t);
  EXPECT_EQ(inv.data<float>()[1], 0.0f);  // the all-zero row
  const CosineNeighbors nn = cosine_top_k(t, inv, t.select(2), 100, 2);
  EXPECT_EQ(nn.ids.size(), 5u);  // 7 rows less the query and the NaN row
  EXPECT_EQ(std::count(nn.ids.begin(), nn.ids.end(), 6), 0);
  EXPECT_EQ(nn.ids[0], 4);  // the copy of row 2
  EXPECT_NEAR(nn.scores[0], 1.0f, 1e-6);
  const auto zero = std::find(nn.ids.begin(), nn.ids.end(), 1);
  ASSERT_NE(zero, nn.ids.end());
  EXPECT_EQ(nn.scores[static_cast<std::size_t>(zero - nn.ids.begin())], 0.0f);
}

// The public function against cosines computed here in double: the same ranking wherever the
// double-precision scores are more than 1e-5 apart, and each score within 1e-5.
TEST(Neighbors, AgreesWithDoublePrecisionBruteForce) {
  std::mt19937_64 rng(11);
  const std::int64_t rows = 2000, dim = 50, k = 10;
  const std::vector<float> table = random_table(rng, rows, dim, false);
  const Tensor t = Tensor::from_vector(table, {rows, dim});
  const Tensor inv = row_inverse_norms(t);
  auto norm = [&](std::int64_t r) {
    double s = 0;
    for (std::int64_t d = 0; d < dim; ++d) s += double(table[r * dim + d]) * table[r * dim + d];
    return std::sqrt(s);
  };
  for (std::int64_t q : {0, 17, 1999}) {
    std::vector<std::pair<double, std::int64_t>> want;
    for (std::int64_t r = 0; r < rows; ++r) {
      if (r == q) continue;
      double dot = 0;
      for (std::int64_t d = 0; d < dim; ++d) dot += double(table[r * dim + d]) * table[q * dim + d];
      want.emplace_back(dot / (norm(r) * norm(q)), r);
    }
    std::sort(want.begin(), want.end(), [](auto a, auto b) { return a.first > b.first; });
    const CosineNeighbors nn = cosine_top_k(t, inv, t.select(q), k, q);
    ASSERT_EQ(nn.ids.size(), static_cast<std::size_t>(k));
    for (std::size_t i = 0; i < nn.ids.size(); ++i) {
      EXPECT_NEAR(nn.scores[i], want[i].first, 1e-5) << "q=" << q << " rank " << i;
      const bool separated = (i == 0 || want[i - 1].first - want[i].first > 1e-5) &&
                             want[i].first - want[i + 1].first > 1e-5;
      if (separated) {
        EXPECT_EQ(nn.ids[i], want[i].second) << "q=" << q << " rank " << i;
      }
    }
  }
}

TEST(Neighbors, BadArgumentsThrow) {
  const Tensor t = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {3, 2});
  const Tensor inv = row_inverse_norms(t);
  EXPECT_THROW(row_inverse_norms(t.to(DType::kFloat64)), ValueError);
  EXPECT_THROW(row_inverse_norms(t.reshape({6})), ValueError);
  EXPECT_THROW(cosine_top_k(t, inv, t.select(0), -1), ValueError);
  EXPECT_THROW(cosine_top_k(t, inv, t.select(0), 2, 3), ValueError);
  EXPECT_THROW(cosine_top_k(t, inv, t.select(0), 2, -2), ValueError);
  EXPECT_THROW(cosine_top_k(t, inv, t.reshape({6}), 2), ValueError);
  EXPECT_THROW(cosine_top_k(t, Tensor::zeros({2}, DType::kFloat32), t.select(0), 2), ValueError);
  EXPECT_EQ(cosine_top_k(t, inv, t.select(0), 0).ids.size(), 0u);
}

}  // namespace
