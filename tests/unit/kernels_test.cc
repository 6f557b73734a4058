// Every fast kernel against its scalar ref twin on the same inputs, bit for bit: on every SIMD
// target this CPU has, and at 1, 2 and 3 threads (the per-thread work threshold lowered so that
// even small inputs split), over dims around the vector widths, the four floating dtypes, int32 and
// int64 ids, duplicates, padding and empty bags. Outputs sit between guard cells that must come
// back untouched.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "emb/runtime.h"
#include "guarded.h"
#include "kernel_sweep.h"
#include "kernels/fast.h"
#include "kernels/ref/embedding_bag_ref.h"
#include "kernels/ref/embedding_ref.h"
#include "runtime_internal.h"

namespace {

using namespace emb;
namespace fast = emb::detail::fast;
namespace ref = emb::detail::ref;

constexpr std::int64_t kDims[] = {1, 3, 7, 8, 15, 16, 17, 32, 64, 128, 129};

using test::Guarded;
using test::same_bits;

template <typename T>
std::vector<T> random_values(std::mt19937_64& rng, std::int64_t n, bool specials) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<T> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = T(normal(rng));
  if (specials && n > 4) {  // a signed zero and an exact tie; NaN where the op keeps it
    v[1] = T(-0.0f);
    v[3] = v[2];
  }
  return v;
}

// A bag layout: num_bags bags over n ids drawn from a small table (duplicates), some empty.
struct Bags {
  std::vector<std::int64_t> ids;
  std::vector<std::int64_t> bounds;
  std::vector<std::int64_t> offset2bag;
  std::int64_t n() const { return static_cast<std::int64_t>(ids.size()); }
  std::int64_t num_bags() const { return static_cast<std::int64_t>(bounds.size()) - 1; }
};

Bags random_bags(std::mt19937_64& rng, std::int64_t num_rows, std::int64_t num_bags) {
  std::uniform_int_distribution<std::int64_t> row(0, num_rows - 1);
  std::uniform_int_distribution<std::int64_t> size(0, 9);  // 0: an empty bag
  Bags b;
  b.bounds.push_back(0);
  for (std::int64_t k = 0; k < num_bags; ++k) {
    const std::int64_t s = size(rng);
    for (std::int64_t j = 0; j < s; ++j) {
      b.ids.push_back(row(rng));
      b.offset2bag.push_back(k);
    }
    b.bounds.push_back(static_cast<std::int64_t>(b.ids.size()));
  }
  return b;
}

template <typename Index>
std::vector<Index> as_index(const std::vector<std::int64_t>& v) {
  return std::vector<Index>(v.begin(), v.end());
}

// Runs body(dim, seed) for every dim: on every target at 1 thread, and on the best target at
// 1, 2 and 3 threads.
template <typename Body>
void sweep(Body&& body) {
  test::sweep_kernels(kDims, body, test::SweepThreads::kBestTargetOnly);
}

template <typename T>
class FastKernels : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double, Half, BFloat16>;
TYPED_TEST_SUITE(FastKernels, FloatTypes);

TEST(FastKernelsDispatch, EveryAvailableTargetIsTheOneThatRuns) {
  const std::vector<std::string> targets = simd_targets_available();
  ASSERT_FALSE(targets.empty());
  EXPECT_EQ(targets.back(), "scalar");
  std::vector<std::int64_t> seen;
  for (const std::string& t : targets) {
    set_simd_target(t);
    EXPECT_EQ(simd_target(), t);
    seen.push_back(fast::dispatched_target());
  }
  set_simd_target("native");
  EXPECT_EQ(simd_target(), targets.front());
  // Each name ran a different compiled instance.
  for (std::size_t i = 0; i < seen.size(); ++i) {
    for (std::size_t j = i + 1; j < seen.size(); ++j) EXPECT_NE(seen[i], seen[j]);
  }
}

// The id range check against its twin: every length around the vector widths, int32 and int64
// ids, tables at the edges of the int32 range, and one bad id (negative, the row count itself,
// the most negative value) at every position.
template <typename Index>
void check_ids_in_range(std::mt19937_64& rng) {
  const std::int64_t kBig = std::int64_t{1} << 40;
  const std::int64_t kInt32Edge = std::int64_t{1} << 31;
  for (std::int64_t rows : {std::int64_t{0}, std::int64_t{1}, std::int64_t{1000}, kInt32Edge - 1,
                            kInt32Edge, kInt32Edge + 5, kBig}) {
    const std::int64_t top = std::min<std::int64_t>(rows, std::numeric_limits<Index>::max());
    for (std::int64_t n : {0, 1, 3, 7, 8, 15, 16, 17, 31, 63, 64, 65, 100, 131}) {
      SCOPED_TRACE("rows=" + std::to_string(rows) + " n=" + std::to_string(n));
      std::vector<Index> ids(static_cast<std::size_t>(n));
      if (rows > 0) {
        std::uniform_int_distribution<std::int64_t> row(0, top - 1);
        for (auto& k : ids) k = static_cast<Index>(row(rng));
        if (n > 0) ids.back() = static_cast<Index>(top - 1);  // the largest valid id
      }
      EXPECT_EQ(fast::ids_in_range(ids.data(), sizeof(Index) == 8, n, rows),
                ref::ids_in_range(ids.data(), n, rows));
      if (rows > 0) {
        EXPECT_TRUE(ref::ids_in_range(ids.data(), n, rows));
      }
      for (std::int64_t bad : {std::int64_t{-1}, rows, std::int64_t{kBig + 1},
                               std::numeric_limits<std::int64_t>::min()}) {
        if (bad < std::numeric_limits<Index>::min() || bad > std::numeric_limits<Index>::max()) {
          bad = std::numeric_limits<Index>::min();
        }
        for (std::int64_t at = 0; at < n; ++at) {
          std::vector<Index> b = ids;
          b[static_cast<std::size_t>(at)] = static_cast<Index>(bad);
          const bool want = ref::ids_in_range(b.data(), n, rows);
          ASSERT_EQ(fast::ids_in_range(b.data(), sizeof(Index) == 8, n, rows), want)
              << "bad=" << bad << " at=" << at;
          if (bad < 0 || bad >= rows) {
            ASSERT_FALSE(want);
          }
        }
      }
    }
  }
}

TEST(FastKernelsIds, InRangeMatchesTheTwin) {
  test::sweep_kernels(std::span<const std::int64_t>(kDims, 1),
                      [](std::int64_t, std::uint64_t seed) {
                        std::mt19937_64 rng(seed);
                        check_ids_in_range<std::int64_t>(rng);
                        check_ids_in_range<std::int32_t>(rng);
                      });
}

TYPED_TEST(FastKernels, GatherRows) {
  using T = TypeParam;
  sweep([](std::int64_t dim, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    const std::int64_t rows = 13;
    const std::vector<T> table = random_values<T>(rng, rows * dim, true);
    const Bags b = random_bags(rng, rows, 30);
    const auto* tb = reinterpret_cast<const std::byte*>(table.data());
    const std::size_t rb = static_cast<std::size_t>(dim) * sizeof(T);
    for (bool i64 : {false, true}) {
      Guarded<T> f(b.n() * dim), r(b.n() * dim);
      if (i64) {
        fast::gather_rows(tb, rb, b.ids.data(), b.n(), reinterpret_cast<std::byte*>(f.data()));
        ref::gather_rows(tb, rb, b.ids.data(), b.n(), reinterpret_cast<std::byte*>(r.data()));
      } else {
        const auto ids = as_index<std::int32_t>(b.ids);
        fast::gather_rows(tb, rb, ids.data(), b.n(), reinterpret_cast<std::byte*>(f.data()));
        ref::gather_rows(tb, rb, ids.data(), b.n(), reinterpret_cast<std::byte*>(r.data()));
      }
      EXPECT_TRUE(same_bits(f, r)) << "int64 ids: " << i64;
    }
  });
}

// An output of 16 MiB or more is written with streaming stores when it is aligned to the vector
// size and its rows are whole vectors; otherwise with plain copies. Every way gives the twin's
// bits, and a bad id is still caught. Rows of 64 bytes (whole vectors everywhere) and 288 (whole
// 32-byte vectors but not 64-byte ones); outputs aligned (streamed where the rows allow), and off
// by 4 bytes (never streamed) and by 32 (streamed with 32-byte vectors only).
TEST(FastKernelsGather, BigOutputsMatchTheTwinAlignedOrNot) {
  constexpr std::int64_t kBigDims[] = {16, 72};
  test::sweep_kernels(
      kBigDims,
      [](std::int64_t dim, std::uint64_t seed) {
        std::mt19937_64 rng(seed);
        const std::int64_t rows = 1000;
        const std::vector<float> table = random_values<float>(rng, rows * dim, true);
        const auto* tb = reinterpret_cast<const std::byte*>(table.data());
        const std::size_t rb = static_cast<std::size_t>(dim) * sizeof(float);
        const std::int64_t n = (std::int64_t{16} << 20) / (dim * 4) + 7;  // just past 16 MiB
        std::uniform_int_distribution<std::int64_t> row(0, rows - 1);
        std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
        for (auto& k : ids) k = row(rng);
        Guarded<float> r(n * dim);
        ref::gather_rows(tb, rb, ids.data(), n, reinterpret_cast<std::byte*>(r.data()));
        for (std::size_t misalign : {0, 4, 32}) {
          auto f = Guarded<float>::at_alignment(n * dim, misalign);
          ASSERT_TRUE(fast::gather_rows_checked(tb, rb, ids.data(), n,
                                                reinterpret_cast<std::byte*>(f.data()), rows));
          EXPECT_TRUE(same_bits(f, r)) << "output off a 64-byte boundary by " << misalign;
        }
        std::vector<std::int64_t> with_bad = ids;
        with_bad[static_cast<std::size_t>(n - 2)] = rows;
        auto g = Guarded<float>::at_alignment(n * dim, 0);
        EXPECT_FALSE(fast::gather_rows_checked(tb, rb, with_bad.data(), n,
                                               reinterpret_cast<std::byte*>(g.data()), rows));
      },
      test::SweepThreads::kBestTargetOnly);
}

// The streaming copy of big buffers against memcpy, on every target: every offset from a 64-byte
// boundary (the unaligned head written by plain stores), lengths around the vector widths and
// the 4-vector unroll, and a length of some megabytes. Guard cells around the destination must
// come back untouched.
TEST(FastKernelsBulk, StreamCopyMatchesMemcpy) {
  constexpr std::int64_t kOneDim[] = {1};
  test::sweep_kernels(
      kOneDim,
      [](std::int64_t, std::uint64_t seed) {
        std::mt19937_64 rng(seed);
        std::vector<unsigned char> src((std::size_t{3} << 20) + 200);
        for (auto& b : src) b = static_cast<unsigned char>(rng());
        for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{31}, std::size_t{32},
                              std::size_t{33}, std::size_t{127}, std::size_t{128}, std::size_t{129},
                              std::size_t{255}, std::size_t{4096 + 17}, std::size_t{3} << 20}) {
          for (std::size_t misalign = 0; misalign < 64; ++misalign) {
            SCOPED_TRACE("n=" + std::to_string(n) + " misalign=" + std::to_string(misalign));
            const std::size_t from = (misalign * 7) % 64;  // the source off by another amount
            auto copied =
                Guarded<unsigned char>::at_alignment(static_cast<std::int64_t>(n), misalign);
            fast::stream_copy(reinterpret_cast<std::byte*>(copied.data()),
                              reinterpret_cast<const std::byte*>(src.data() + from), n);
            Guarded<unsigned char> expected(static_cast<std::int64_t>(n));
            std::memcpy(expected.data(), src.data() + from, n);
            ASSERT_TRUE(same_bits(copied, expected));
            if (n > (std::size_t{1} << 20)) break;  // the long one at one offset per target
          }
        }
      },
      test::SweepThreads::kBestTargetOnly);
}

// The inputs of a bag kernel test: an 11-row table with a signed zero and a tie, 25 random bags
// (some empty) of ids with duplicates, and per-sample weights.
template <typename T, typename Index>
struct BagInputs {
  BagInputs(std::int64_t dim, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    table = random_values<T>(rng, rows * dim, true);
    bags = random_bags(rng, rows, 25);
    ids = as_index<Index>(bags.ids);
    psw = random_values<T>(rng, bags.n(), false);
  }
  std::int64_t rows = 11;
  std::vector<T> table;
  Bags bags;
  std::vector<Index> ids;
  std::vector<T> psw;
};

// Bag sum and mean, with and without per-sample weights and padding, int32 and int64 ids.
template <typename T, typename Index>
void check_bag_sum(std::int64_t dim, std::uint64_t seed) {
  const BagInputs<T, Index> in(dim, seed);
  const auto& [rows, table, b, ids, psw] = in;
  const std::int64_t B = b.num_bags();
  for (std::int64_t pad : {std::int64_t{-1}, std::int64_t{4}}) {
    SCOPED_TRACE("padding_idx=" + std::to_string(pad));
    {  // sum
      Guarded<T> f(B * dim), r(B * dim);
      fast::bag_sum(table.data(), dim, ids.data(), b.bounds.data(), B, pad, (const T*)nullptr,
                    fast::PswCombine::kFused, f.data());
      ref::bag_sum(table.data(), dim, ids.data(), b.bounds.data(), B, pad, (const T*)nullptr,
                   r.data());
      EXPECT_TRUE(same_bits(f, r)) << "sum";
    }
    // Per-sample weights: the combine the ref twin uses for this dtype and padding (fused
    // without padding_idx except for float64), then the other one against a plain loop.
    const bool ref_fused = !std::is_same_v<T, double> && pad < 0;
    {
      Guarded<T> f(B * dim), r(B * dim);
      fast::bag_sum(table.data(), dim, ids.data(), b.bounds.data(), B, pad, psw.data(),
                    ref_fused ? fast::PswCombine::kFused : fast::PswCombine::kUnfused, f.data());
      ref::bag_sum(table.data(), dim, ids.data(), b.bounds.data(), B, pad, psw.data(), r.data());
      EXPECT_TRUE(same_bits(f, r)) << "sum psw as the ref (fused: " << ref_fused << ")";
    }
    {
      using A = ref::acc_t<T>;
      Guarded<T> f(B * dim), r(B * dim);
      fast::bag_sum(table.data(), dim, ids.data(), b.bounds.data(), B, pad, psw.data(),
                    ref_fused ? fast::PswCombine::kUnfused : fast::PswCombine::kFused, f.data());
      for (std::int64_t k = 0; k < B; ++k) {
        for (std::int64_t d = 0; d < dim; ++d) {
          A acc = 0;
          for (std::int64_t i = b.bounds[k]; i < b.bounds[k + 1]; ++i) {
            if (ids[i] == pad) continue;
            const A x = A(table[ids[i] * dim + d]);
            acc = ref_fused ? acc + x * A(psw[i]) : std::fma(x, A(psw[i]), acc);
          }
          r.data()[k * dim + d] = T(acc);
        }
      }
      EXPECT_TRUE(same_bits(f, r)) << "sum psw, the other combine";
    }
    {  // mean
      std::vector<std::int64_t> sizes(static_cast<std::size_t>(B), 0);
      for (std::int64_t k = 0; k < B; ++k) {
        for (std::int64_t i = b.bounds[k]; i < b.bounds[k + 1]; ++i) sizes[k] += ids[i] != pad;
      }
      Guarded<T> f(B * dim), r(B * dim);
      fast::bag_mean(table.data(), dim, ids.data(), b.bounds.data(), B, pad, sizes.data(),
                     f.data());
      ref::bag_sum(table.data(), dim, ids.data(), b.bounds.data(), B, pad, (const T*)nullptr,
                   r.data());
      ref::bag_divide_by_size(r.data(), dim, sizes.data(), B);
      EXPECT_TRUE(same_bits(f, r)) << "mean";
    }
  }
}

// Ids a checking kernel must refuse: negative, the row count, the most negative value.
template <typename Index>
std::vector<Index> bad_ids(std::int64_t rows) {
  return {Index{-1}, static_cast<Index>(rows), std::numeric_limits<Index>::min()};
}

// The kernels that check the ids as they read them: on valid ids, the twin's result and true;
// one bad id anywhere (first, middle, last position): false, and no read outside the table (the
// sanitizer build would catch one).
template <typename T, typename Index>
void check_checking_kernels(std::int64_t dim, std::uint64_t seed) {
  const BagInputs<T, Index> in(dim, seed);
  // References, not a structured binding: the lambda below captures them (clang before 16 cannot
  // capture a binding).
  const std::int64_t rows = in.rows;
  const std::vector<T>& table = in.table;
  const Bags& b = in.bags;
  const std::vector<Index>& ids = in.ids;
  const std::vector<T>& psw = in.psw;
  const std::int64_t B = b.num_bags();
  std::vector<std::int64_t> sizes(static_cast<std::size_t>(B));
  for (std::int64_t k = 0; k < B; ++k) sizes[k] = b.bounds[k + 1] - b.bounds[k];
  const auto* tb = reinterpret_cast<const std::byte*>(table.data());
  const std::size_t rb = static_cast<std::size_t>(dim) * sizeof(T);
  const auto combine =
      std::is_same_v<T, double> ? fast::PswCombine::kUnfused : fast::PswCombine::kFused;
  enum Op { kGather, kSum, kSumPsw, kMean };
  // Runs op on these ids into f; returns what the kernel returned.
  const auto run = [&](Op op, const std::vector<Index>& at, T* f) {
    switch (op) {
      case kGather:
        return fast::gather_rows_checked(tb, rb, at.data(), b.n(), reinterpret_cast<std::byte*>(f),
                                         rows);
      case kSum:
        return fast::bag_sum_checked(table.data(), dim, at.data(), b.bounds.data(), B, -1,
                                     (const T*)nullptr, combine, nullptr, f, rows);
      case kSumPsw:
        return fast::bag_sum_checked(table.data(), dim, at.data(), b.bounds.data(), B, -1,
                                     psw.data(), combine, nullptr, f, rows);
      default:
        return fast::bag_sum_checked(table.data(), dim, at.data(), b.bounds.data(), B, -1,
                                     (const T*)nullptr, combine, sizes.data(), f, rows);
    }
  };
  for (Op op : {kGather, kSum, kSumPsw, kMean}) {
    SCOPED_TRACE("op=" + std::to_string(op));
    const std::int64_t out_rows = op == kGather ? b.n() : B;
    Guarded<T> f(out_rows * dim), r(out_rows * dim);
    ASSERT_TRUE(run(op, ids, f.data()));
    if (op == kGather) {
      ref::gather_rows(tb, rb, ids.data(), b.n(), reinterpret_cast<std::byte*>(r.data()));
    } else {
      ref::bag_sum(table.data(), dim, ids.data(), b.bounds.data(), B, -1,
                   op == kSumPsw ? psw.data() : (const T*)nullptr, r.data());
      if (op == kMean) ref::bag_divide_by_size(r.data(), dim, sizes.data(), B);
    }
    EXPECT_TRUE(same_bits(f, r));
    if (b.n() == 0) continue;
    for (Index bad : bad_ids<Index>(rows)) {
      for (std::int64_t at : {std::int64_t{0}, b.n() / 2, b.n() - 1}) {
        std::vector<Index> with_bad = ids;
        with_bad[static_cast<std::size_t>(at)] = bad;
        Guarded<T> g(out_rows * dim);
        EXPECT_FALSE(run(op, with_bad, g.data())) << "bad id " << bad << " at " << at;
      }
    }
  }
}

// Widths of 1, 2 and 4 blocks of 8 vectors on every target (the bag sum's fixed prefetch runs),
// and rows of 5 to 7 AVX-512 vectors of float64 (40, 48, 56) and float32 (80, 96, 112), which
// that target sums in two passes of half the row.
constexpr std::int64_t kBagSumDims[] = {1,  3,  7,  8,  15,  16,  17,  32,  40, 48,
                                        56, 64, 80, 96, 112, 128, 129, 256, 512};

TYPED_TEST(FastKernels, BagSumAndMean) {
  test::sweep_kernels(
      kBagSumDims,
      [](std::int64_t dim, std::uint64_t seed) {
        check_bag_sum<TypeParam, std::int32_t>(dim, seed);
        check_bag_sum<TypeParam, std::int64_t>(dim, seed + 1);
      },
      test::SweepThreads::kBestTargetOnly);
}

TYPED_TEST(FastKernels, CheckingGatherAndBagSum) {
  sweep([](std::int64_t dim, std::uint64_t seed) {
    check_checking_kernels<TypeParam, std::int32_t>(dim, seed);
    check_checking_kernels<TypeParam, std::int64_t>(dim, seed + 1);
  });
}

// Dims that give every block shape of the bag max (1 to 4 vectors, a tail after each) at 4, 8
// and 16 lanes.
constexpr std::int64_t kMaxDims[] = {1, 3, 7, 8, 15, 16, 17, 24, 40, 53, 64, 129};

void append_bag(Bags& b, const std::vector<std::int64_t>& ids) {
  const auto bag = static_cast<std::int64_t>(b.num_bags());
  for (std::int64_t k : ids) {
    b.ids.push_back(k);
    b.offset2bag.push_back(bag);
  }
  b.bounds.push_back(b.n());
}

template <typename T, typename Index>
void check_bag_max(std::int64_t dim, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::int64_t rows = 9;
  std::vector<T> table = random_values<T>(rng, rows * dim, true);
  // Row 5 holds NaNs (first, middle and last element); row 7 repeats row 4 (ties between ids).
  for (std::int64_t c : {std::int64_t{0}, dim / 2, dim - 1}) {
    table[static_cast<std::size_t>(dim * 5 + c)] = T(std::nanf(""));
  }
  std::copy_n(table.begin() + dim * 4, dim, table.begin() + dim * 7);
  Bags b = random_bags(rng, rows, 25);
  // Padding first, only padding, NaN first and later, ties either way, a bag longer than the
  // prefetch distance.
  append_bag(b, {2});
  append_bag(b, {2, 2, 4, 7, 2, 5, 1});
  append_bag(b, {5, 4, 7, 2});
  append_bag(b, {7, 4, 4, 2});
  append_bag(b, {});
  std::uniform_int_distribution<std::int64_t> row(0, rows - 1);
  std::vector<std::int64_t> longer(40);
  for (auto& k : longer) k = row(rng);
  append_bag(b, longer);
  append_bag(b, {2, 2});
  const std::vector<Index> ids = as_index<Index>(b.ids);
  const std::int64_t B = b.num_bags();
  for (std::int64_t pad : {std::int64_t{-1}, std::int64_t{2}}) {
    Guarded<T> f(B * dim), r(B * dim);
    Guarded<std::int64_t> fi(B * dim), ri(B * dim);
    fast::bag_max(table.data(), dim, ids.data(), b.bounds.data(), B, pad, f.data(), fi.data());
    ref::bag_max(table.data(), dim, ids.data(), b.bounds.data(), B, pad, r.data(), ri.data());
    EXPECT_TRUE(same_bits(f, r)) << "max values, padding_idx " << pad;
    EXPECT_TRUE(same_bits(fi, ri)) << "max indices, padding_idx " << pad;
    // Without max_indices: the same values.
    Guarded<T> fv(B * dim), rv(B * dim);
    fast::bag_max(table.data(), dim, ids.data(), b.bounds.data(), B, pad, fv.data(),
                  static_cast<std::int64_t*>(nullptr));
    ref::bag_max(table.data(), dim, ids.data(), b.bounds.data(), B, pad, rv.data(),
                 static_cast<std::int64_t*>(nullptr));
    EXPECT_TRUE(same_bits(fv, r)) << "max values without indices, padding_idx " << pad;
    EXPECT_TRUE(same_bits(rv, r)) << "ref max values without indices, padding_idx " << pad;
  }
}

TYPED_TEST(FastKernels, BagMax) {
  test::sweep_kernels(
      kMaxDims,
      [](std::int64_t dim, std::uint64_t seed) {
        check_bag_max<TypeParam, std::int32_t>(dim, seed);
        check_bag_max<TypeParam, std::int64_t>(dim, seed + 1);
      },
      test::SweepThreads::kBestTargetOnly);
}

template <typename T, typename Index>
void check_dense_backward(std::int64_t dim, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::int64_t rows = 10;
  const Bags b = random_bags(rng, rows, 25);
  const std::vector<Index> ids = as_index<Index>(b.ids);
  const std::int64_t n = b.n();
  const std::int64_t B = b.num_bags();
  const std::vector<T> grad = random_values<T>(rng, n * dim, true);
  const std::vector<T> bag_grad = random_values<T>(rng, B * dim, true);
  const std::vector<T> psw = random_values<T>(rng, n, false);
  const std::vector<T> previous = random_values<T>(rng, rows * dim, false);  // accumulated into
  std::vector<std::int64_t> counts(rows, 0), sizes(static_cast<std::size_t>(B), 0);
  for (std::int64_t i = 0; i < n; ++i) ++counts[b.ids[i]];
  for (std::int64_t pad : {std::int64_t{-1}, std::int64_t{3}}) {
    SCOPED_TRACE("padding_idx=" + std::to_string(pad));
    for (std::int64_t k = 0; k < B; ++k) {
      sizes[k] = 0;
      for (std::int64_t i = b.bounds[k]; i < b.bounds[k + 1]; ++i) sizes[k] += ids[i] != pad;
    }
    for (bool sgf : {false, true}) {
      const std::int64_t* c = sgf ? counts.data() : nullptr;
      Guarded<T> f(rows * dim), r(rows * dim);
      f.copy_from(previous);
      r.copy_from(previous);
      fast::embedding_dense_backward(grad.data(), ids.data(), n, dim, pad, c, f.data(), rows);
      ref::embedding_dense_backward(grad.data(), ids.data(), n, dim, pad, c, r.data());
      EXPECT_TRUE(same_bits(f, r)) << "embedding dense backward, sgf " << sgf;
      for (int variant = 0; variant < 3; ++variant) {  // sum, sum with psw, mean
        const T* w = variant == 1 ? psw.data() : nullptr;
        const std::int64_t* s = variant == 2 ? sizes.data() : nullptr;
        Guarded<T> bf(rows * dim), br(rows * dim);
        bf.copy_from(previous);
        br.copy_from(previous);
        fast::bag_dense_backward_sum(bag_grad.data(), dim, ids.data(), b.offset2bag.data(), n, pad,
                                     w, c, s, bf.data(), rows);
        ref::bag_dense_backward_sum(bag_grad.data(), dim, ids.data(), b.offset2bag.data(), n, pad,
                                    w, c, s, br.data());
        EXPECT_TRUE(same_bits(bf, br))
            << "bag dense backward variant " << variant << ", sgf " << sgf;
      }
    }
    {  // mode max: the forward's winners scattered back
      Guarded<T> out(B * dim);
      Guarded<std::int64_t> mi(B * dim);
      std::vector<T> table = random_values<T>(rng, rows * dim, false);
      ref::bag_max(table.data(), dim, ids.data(), b.bounds.data(), B, pad, out.data(), mi.data());
      Guarded<T> f(rows * dim), r(rows * dim);
      f.copy_from(previous);
      r.copy_from(previous);
      fast::bag_dense_backward_max(bag_grad.data(), dim, mi.data(), sizes.data(), B, f.data(),
                                   rows);
      ref::bag_dense_backward_max(bag_grad.data(), dim, mi.data(), sizes.data(), B, r.data());
      EXPECT_TRUE(same_bits(f, r)) << "bag dense backward max";
    }
  }
}

TYPED_TEST(FastKernels, DenseBackward) {
  sweep([](std::int64_t dim, std::uint64_t seed) {
    check_dense_backward<TypeParam, std::int32_t>(dim, seed);
    check_dense_backward<TypeParam, std::int64_t>(dim, seed + 1);
  });
}

// The per-sample-weight gradient of the first n positions of b (n: every tail of the kernel's
// groups of positions side by side: 4 and 8 scalar dots, 2, 4 or 8 SIMD lanes, two groups).
template <typename T, typename Index>
void check_psw_backward(const Bags& b, std::int64_t n, const std::vector<T>& table,
                        const std::vector<T>& grad, std::int64_t dim) {
  using A = ref::acc_t<T>;
  constexpr bool k16 = std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;
  const std::vector<Index> ids = as_index<Index>(b.ids);
  // The fast kernel takes the bags' bounds: those of b cut at position n (trailing bags empty).
  std::vector<std::int64_t> bounds = b.bounds;
  for (std::int64_t& x : bounds) x = std::min(x, n);
  const std::int64_t num_bags = b.num_bags();
  for (std::int64_t pad : {std::int64_t{-1}, std::int64_t{6}}) {
    SCOPED_TRACE("n=" + std::to_string(n) + " padding_idx=" + std::to_string(pad));
    // The ref twin's dot: float16 in its own arithmetic, the others unfused.
    const fast::PswDot ref_dot =
        std::is_same_v<T, Half> ? fast::PswDot::kRoundEachStep : fast::PswDot::kUnfused;
    Guarded<T> f(n), r(n);
    fast::bag_per_sample_weights_backward(grad.data(), table.data(), dim, ids.data(), bounds.data(),
                                          num_bags, pad, ref_dot, f.data());
    ref::bag_per_sample_weights_backward(grad.data(), table.data(), dim, ids.data(),
                                         b.offset2bag.data(), n, pad, r.data());
    EXPECT_TRUE(same_bits(f, r)) << "as the ref";
    // The other roundings against plain loops (bfloat16 in its own arithmetic too).
    for (fast::PswDot dot :
         {fast::PswDot::kFused, fast::PswDot::kUnfused, fast::PswDot::kRoundEachStep}) {
      Guarded<T> fo(n), ro(n);
      fast::bag_per_sample_weights_backward(grad.data(), table.data(), dim, ids.data(),
                                            bounds.data(), num_bags, pad, dot, fo.data());
      for (std::int64_t i = 0; i < n; ++i) {
        A acc = 0;
        if (ids[i] != pad) {
          for (std::int64_t d = 0; d < dim; ++d) {
            const A g = A(grad[b.offset2bag[i] * dim + d]);
            const A w = A(table[ids[i] * dim + d]);
            if (dot == fast::PswDot::kFused) {
              acc = std::fma(g, w, acc);
            } else if (dot == fast::PswDot::kUnfused || !k16) {
              acc = acc + g * w;
            } else {
              acc = A(T(acc + A(T(g * w))));
            }
          }
        }
        ro.data()[i] = T(acc);
      }
      EXPECT_TRUE(same_bits(fo, ro)) << "dot " << int(dot);
    }
  }
}

template <typename T>
void check_psw_backward(std::int64_t dim, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::int64_t rows = 10;
  Bags b = random_bags(rng, rows, 25);
  // Bags of 8 and more: positions of one bag side by side (with padding among them).
  append_bag(b, {6, 1, 2, 6, 3, 4, 5, 6, 7, 8, 9, 0, 6, 1, 2, 3, 4, 5, 7, 8});
  append_bag(b, {1, 3, 5, 7, 9, 0, 2, 4, 6});
  // A bag of 40 (groups of SIMD lanes all in one bag, padding among them), then bags of 1 and 3
  // (groups of lanes over several bags).
  append_bag(b, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
                 2, 6, 4, 8, 1, 3, 5, 7, 9, 0, 6, 6, 1, 2, 3, 4, 5, 7, 8, 9});
  for (std::int64_t k = 0; k < 12; ++k) append_bag(b, {k % 10});
  for (std::int64_t k = 0; k < 6; ++k) append_bag(b, {k, 6, 9 - k});
  std::vector<T> table = random_values<T>(rng, rows * dim, true);
  table[static_cast<std::size_t>(dim * 3 + dim / 2)] = T(std::nanf(""));  // row 3 has a NaN
  const std::vector<T> grad = random_values<T>(rng, b.num_bags() * dim, false);
  for (std::int64_t n :
       {std::int64_t{0}, std::int64_t{1}, std::int64_t{4}, std::int64_t{7}, std::int64_t{8},
        std::int64_t{9}, std::int64_t{12}, std::int64_t{15}, std::int64_t{16}, std::int64_t{17},
        std::int64_t{23}, std::int64_t{24}, std::int64_t{31}, std::int64_t{33}, b.n() - 1, b.n()}) {
    if (n > b.n()) continue;
    check_psw_backward<T, std::int32_t>(b, n, table, grad, dim);
    check_psw_backward<T, std::int64_t>(b, n, table, grad, dim);
  }
}

TYPED_TEST(FastKernels, PerSampleWeightsBackward) {
  // 2 and 3 threads on every target too: each target has its own groups of lanes.
  test::sweep_kernels(
      kDims, [](std::int64_t dim, std::uint64_t seed) { check_psw_backward<TypeParam>(dim, seed); },
      test::SweepThreads::kEveryTarget);
}

TEST(FastKernelsEmpty, NoBagsNoIdsZeroDimWriteNothing) {
  const std::vector<float> table(12, 1.0f);
  const std::vector<std::int64_t> bounds = {0};
  Guarded<float> out(0);
  Guarded<std::int64_t> mi(0);
  fast::bag_sum(table.data(), 4, (const std::int64_t*)nullptr, bounds.data(), 0, -1,
                (const float*)nullptr, fast::PswCombine::kFused, out.data());
  fast::bag_max(table.data(), 4, (const std::int64_t*)nullptr, bounds.data(), 0, -1, out.data(),
                mi.data());
  fast::gather_rows(reinterpret_cast<const std::byte*>(table.data()), 16,
                    (const std::int32_t*)nullptr, 0, reinterpret_cast<std::byte*>(out.data()));
  EXPECT_TRUE(out.guards_intact());
  EXPECT_TRUE(mi.guards_intact());
  // Three empty bags of width 0 write nothing either.
  const std::vector<std::int64_t> empty_bounds = {0, 0, 0, 0};
  fast::bag_sum(table.data(), 0, (const std::int64_t*)nullptr, empty_bounds.data(), 3, -1,
                (const float*)nullptr, fast::PswCombine::kFused, out.data());
  EXPECT_TRUE(out.guards_intact());
}

}  // namespace
