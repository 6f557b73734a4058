// The fast kernels of the sparse gradient (its rows, uncoalesced and coalesced) and of the renorm
// against their scalar ref twins on the same inputs, bit for bit: on every SIMD target this CPU
// has, each at 1, 2 and 3 threads (the per-thread work threshold lowered so that small inputs
// split), over dims around the vector widths, the four floating dtypes and int32 and int64 ids.
// Outputs sit between guard cells that must come back untouched. The index sorts behind them
// (grouping positions by id, the distinct ids of a renorm) against theirs, on every path.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "emb/embedding.h"
#include "emb/runtime.h"
#include "guarded.h"
#include "kernel_sweep.h"
#include "kernels/fast_sparse.h"
#include "kernels/ref/embedding_ref.h"
#include "kernels/ref/sparse_ref.h"
#include "runtime_internal.h"

namespace {

using namespace emb;
namespace fast = emb::detail::fast;
namespace ref = emb::detail::ref;

// Around the vector widths (4, 8, 16 lanes); 20 and 36 leave a bfloat16 2-norm tail of 4.
constexpr std::int64_t kDims[] = {1, 3, 7, 8, 15, 16, 17, 20, 36, 64, 129};
// The row kernels are elementwise: fewer dims cover their vector bodies and tails.
constexpr std::int64_t kRowDims[] = {1, 3, 8, 17, 64};

using test::Guarded;
using test::same_bits;

template <typename T>
std::vector<T> random_values(std::mt19937_64& rng, std::int64_t n, float scale = 1.0f) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<T> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = T(normal(rng));
  if (n > 4) {  // a signed zero and an exact tie
    v[1] = T(-0.0f);
    v[3] = v[2];
  }
  return v;
}

std::vector<std::int64_t> random_ids(std::mt19937_64& rng, std::int64_t n, std::int64_t rows) {
  std::uniform_int_distribution<std::int64_t> row(0, rows - 1);
  std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
  for (auto& k : ids) k = row(rng);
  return ids;
}

template <typename Index>
std::vector<Index> as_index(const std::vector<std::int64_t>& v) {
  return std::vector<Index>(v.begin(), v.end());
}

// Runs body(dim, seed) for every dim, on every target, at 1, 2 and 3 threads.
template <typename Body, std::size_t N = std::size(kDims)>
void sweep(Body&& body, const std::int64_t (&dims)[N] = kDims) {
  test::sweep_kernels(dims, body);
}

// ---- The index sorts --------------------------------------------------------------------------

template <typename Index>
void check_group_rows(std::int64_t n, std::int64_t rows, std::int64_t pad, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::vector<Index> ids = as_index<Index>(random_ids(rng, n, rows));
  const ref::RowGroups f = fast::group_rows_by_id(ids.data(), n, pad, rows);
  const ref::RowGroups r = ref::group_rows_by_id(ids.data(), n, pad, rows);
  EXPECT_EQ(f.order, r.order);
  EXPECT_EQ(f.starts, r.starts);
}

TEST(SparseKernelSorts, GroupRowsByIdAsTheStableSort) {
  // Below and above the radix threshold; tables small (long groups) to large (most ids once); at
  // 1, 2 and 3 threads (the keys cut into that many chunks).
  const std::int64_t no_dim[] = {1};
  sweep(
      [](std::int64_t, std::uint64_t) {
        for (std::int64_t n : std::vector<std::int64_t>{0, 1, 2, 7, 100, 1023, 1024, 5000}) {
          for (std::int64_t rows : std::vector<std::int64_t>{1, 5, 1000, std::int64_t{1} << 24,
                                                             std::int64_t{1} << 40}) {
            for (std::int64_t pad : {std::int64_t{-1}, std::int64_t{0}, rows - 1}) {
              SCOPED_TRACE("n=" + std::to_string(n) + " rows=" + std::to_string(rows) +
                           " pad=" + std::to_string(pad));
              if (rows <= std::numeric_limits<std::int32_t>::max()) {
                check_group_rows<std::int32_t>(n, rows, pad, static_cast<std::uint64_t>(n + rows));
              }
              check_group_rows<std::int64_t>(n, rows, pad,
                                             static_cast<std::uint64_t>(n * 3 + rows));
            }
          }
        }
      },
      no_dim);
  // Ids and positions too wide to share 64 bits: the comparison-sort fallback.
  const std::vector<std::int64_t> wide = {std::int64_t{1} << 61, 3, std::int64_t{1} << 61, 0};
  const ref::RowGroups f = fast::group_rows_by_id(wide.data(), 4, -1, std::int64_t{1} << 62);
  const ref::RowGroups r = ref::group_rows_by_id(wide.data(), 4, -1, std::int64_t{1} << 62);
  EXPECT_EQ(f.order, r.order);
  EXPECT_EQ(f.starts, r.starts);
  EXPECT_EQ(f.order, (std::vector<std::int64_t>{3, 1, 0, 2}));  // stable: 0 before 2
}

TEST(SparseKernelSorts, SortedUniqueIdsAsSortAndUnique) {
  // Few ids (the comparison sort), else the radix sort, over tables of 1 to 2^50 rows.
  for (std::int64_t n : std::vector<std::int64_t>{0, 5, 63, 64, 500, 5000}) {
    for (std::int64_t rows :
         std::vector<std::int64_t>{1, 10, 100000, std::int64_t{1} << 30, std::int64_t{1} << 50}) {
      SCOPED_TRACE("n=" + std::to_string(n) + " rows=" + std::to_string(rows));
      std::mt19937_64 rng(static_cast<std::uint64_t>(n + rows));
      const std::vector<std::int64_t> ids = random_ids(rng, n, rows);
      EXPECT_EQ(fast::sorted_unique_ids(ids.data(), n, rows),
                ref::sorted_unique_ids(ids.data(), n, rows));
      if (rows <= std::numeric_limits<std::int32_t>::max()) {
        const auto ids32 = as_index<std::int32_t>(ids);
        EXPECT_EQ(fast::sorted_unique_ids(ids32.data(), n, rows),
                  ref::sorted_unique_ids(ids32.data(), n, rows));
      }
    }
  }
}

// ---- The rows of a sparse gradient ------------------------------------------------------------

template <typename T>
class SparseKernels : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double, Half, BFloat16>;
TYPED_TEST_SUITE(SparseKernels, FloatTypes);

// fast vs ref over one source, grouped as `groups` says (null order / starts: uncoalesced).
template <typename T, typename Index>
::testing::AssertionResult rows_match(const ref::SparseRowsSource<T>& s, const Index* ids,
                                      const std::int64_t* order, const std::int64_t* starts,
                                      std::int64_t groups) {
  Guarded<std::int64_t> fi(groups), ri(groups);
  Guarded<T> fv(groups * s.dim), rv(groups * s.dim);
  fast::sparse_grad_rows(s, ids, order, starts, groups, fi.data(), fv.data());
  ref::sparse_grad_rows(s, ids, order, starts, groups, ri.data(), rv.data());
  if (auto r = same_bits(fi, ri); !r) return r << " (ids)";
  if (auto r = same_bits(fv, rv); !r) return r << " (values)";
  // Without out_ids (the caller holds the ids): the same values, no id written.
  Guarded<T> nv(groups * s.dim);
  fast::sparse_grad_rows(s, ids, order, starts, groups, nullptr, nv.data());
  if (auto r = same_bits(nv, rv); !r) return r << " (values, no ids)";
  return ::testing::AssertionSuccess();
}

template <typename T, typename Index>
void check_sparse_rows(std::int64_t dim, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::int64_t rows = 9, n = 70, bags = 12;
  const std::vector<std::int64_t> ids64 = random_ids(rng, n, rows);
  const std::vector<Index> ids = as_index<Index>(ids64);
  const std::vector<T> grad = random_values<T>(rng, n * dim);         // one row per position
  const std::vector<T> bag_grad = random_values<T>(rng, bags * dim);  // one row per bag
  const std::vector<T> psw = random_values<T>(rng, n);
  std::vector<std::int64_t> src_row(static_cast<std::size_t>(n)), bag_size(bags, 0), counts(n, 0);
  std::uniform_int_distribution<std::int64_t> bag(0, bags - 1);
  for (auto& b : src_row) b = bag(rng);
  for (std::int64_t i = 0; i < n; ++i) {
    ++bag_size[src_row[i]];
    for (std::int64_t j = 0; j < n; ++j) counts[i] += ids64[j] == ids64[i];
  }
  for (std::int64_t pad : {std::int64_t{-1}, std::int64_t{4}}) {
    const ref::RowGroups g = ref::group_rows_by_id(ids.data(), n, pad, rows);
    const ref::RowGroups kept = [&] {  // the uncoalesced rows: one group per kept position
      ref::RowGroups k;
      for (std::int64_t i = 0; i < n; ++i) {
        if (ids64[i] != pad) k.order.push_back(i);
      }
      return k;
    }();
    const auto m = static_cast<std::int64_t>(kept.order.size());
    for (bool sgf : {false, true}) {
      const std::int64_t* c = sgf ? counts.data() : nullptr;
      // A plain lookup's gradient, then a bag's (sum, psw, mean).
      const ref::SparseRowsSource<T> sources[] = {
          {grad.data(), dim, nullptr, nullptr, nullptr, c},
          {bag_grad.data(), dim, src_row.data(), nullptr, nullptr, c},
          {bag_grad.data(), dim, src_row.data(), psw.data(), nullptr, c},
          {bag_grad.data(), dim, src_row.data(), nullptr, bag_size.data(), c},
      };
      for (std::size_t v = 0; v < std::size(sources); ++v) {
        SCOPED_TRACE("pad=" + std::to_string(pad) + " sgf=" + std::to_string(sgf) +
                     " source=" + std::to_string(v));
        EXPECT_TRUE(rows_match(sources[v], ids.data(), g.order.data(), g.starts.data(), g.groups()))
            << "coalesced";
        EXPECT_TRUE(rows_match(sources[v], ids.data(), kept.order.data(), nullptr, m))
            << "uncoalesced";
        if (pad < 0) {
          EXPECT_TRUE(rows_match(sources[v], ids.data(), nullptr, nullptr, n))
              << "uncoalesced, every position";
        }
      }
    }
  }
}

TYPED_TEST(SparseKernels, SparseGradRows) {
  sweep(
      [](std::int64_t dim, std::uint64_t seed) {
        check_sparse_rows<TypeParam, std::int32_t>(dim, seed);
        check_sparse_rows<TypeParam, std::int64_t>(dim, seed + 1);
      },
      kRowDims);
}

// The coalesced rows of a larger gradient (the radix sort's order, groups across threads).
TYPED_TEST(SparseKernels, SparseGradRowsLarge) {
  using T = TypeParam;
  sweep([](std::int64_t dim, std::uint64_t seed) {
    if (dim != 17 && dim != 64) return;
    std::mt19937_64 rng(seed);
    const std::int64_t rows = 700, n = 3000;
    const std::vector<std::int64_t> ids = random_ids(rng, n, rows);
    const std::vector<T> grad = random_values<T>(rng, n * dim);
    const ref::RowGroups g = fast::group_rows_by_id(ids.data(), n, -1, rows);
    const ref::SparseRowsSource<T> s{grad.data(), dim, nullptr, nullptr, nullptr, nullptr};
    EXPECT_TRUE(rows_match(s, ids.data(), g.order.data(), g.starts.data(), g.groups()));
  });
}

// ---- Renorm -----------------------------------------------------------------------------------

template <typename T>
void check_renorm(std::int64_t dim, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::int64_t rows = 40;
  // Rows of very different sizes, so that some are over max_norm and some are not.
  std::vector<T> table = random_values<T>(rng, rows * dim);
  std::uniform_real_distribution<float> size(0.1f, 3.0f);
  for (std::int64_t r = 0; r < rows; ++r) {
    const float s = size(rng);
    for (std::int64_t d = 0; d < dim; ++d) table[r * dim + d] = T(float(table[r * dim + d]) * s);
  }
  table[static_cast<std::size_t>(7 * dim)] = T(std::nanf(""));  // row 7 has a NaN
  std::vector<std::int64_t> ids;
  for (std::int64_t r = 0; r < rows; r += 1 + r % 3) ids.push_back(r);  // distinct, sorted
  const double max_norm = std::sqrt(static_cast<double>(dim));
  const double inf = std::numeric_limits<double>::infinity();
  for (double p : {2.0, 1.0, 3.5, 0.0, inf, -inf}) {
    Guarded<T> f(rows * dim), r(rows * dim);
    std::memcpy(f.data(), table.data(), table.size() * sizeof(T));
    std::memcpy(r.data(), table.data(), table.size() * sizeof(T));
    const double m = p == 0.0 ? dim / 2.0 : max_norm;
    fast::renorm_rows(f.data(), dim, ids.data(), static_cast<std::int64_t>(ids.size()), m, p);
    ref::renorm_rows(r.data(), dim, ids.data(), static_cast<std::int64_t>(ids.size()), m, p);
    EXPECT_TRUE(same_bits(f, r)) << "norm_type " << p;
    // Some rows were scaled, some not (the test would otherwise miss one half of the kernel).
    if (p == 2.0) {
      EXPECT_NE(std::memcmp(f.data(), table.data(), table.size() * sizeof(T)), 0);
    }
  }
}

TYPED_TEST(SparseKernels, RenormRows) {
  sweep([](std::int64_t dim, std::uint64_t seed) { check_renorm<TypeParam>(dim, seed); });
}

// The renorm of a list of ids with duplicates against its twin: int32 and int64 ids, through the
// bitmap (64 ids or more, the table at most 64 rows per id) and through the sorted distinct ids
// (few ids, or a table much larger than them: that table only at the narrow dims, as the sorted
// path is the one the few ids take at every dim). Every distinct row is renormed once, whatever
// the thread count and however often its id repeats.
template <typename T, typename Index>
void check_renorm_ids(std::int64_t dim, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (auto [rows, n] :
       {std::pair<std::int64_t, std::int64_t>{200, 300}, {1000, 64}, {300, 63}, {4500, 64}}) {
    if (rows > 64 * n && dim > 8) continue;
    SCOPED_TRACE("rows=" + std::to_string(rows) + " n=" + std::to_string(n));
    std::vector<T> table = random_values<T>(rng, rows * dim);
    std::uniform_real_distribution<float> size(0.1f, 3.0f);
    for (std::int64_t r = 0; r < rows; ++r) {
      const float s = size(rng);
      for (std::int64_t d = 0; d < dim; ++d) table[r * dim + d] = T(float(table[r * dim + d]) * s);
    }
    std::uniform_int_distribution<std::int64_t> row(0, rows - 1);
    std::vector<Index> ids(static_cast<std::size_t>(n));
    for (auto& k : ids) k = static_cast<Index>(row(rng));
    ids[1] = ids[0];  // a duplicate, and the table's last row
    ids[static_cast<std::size_t>(n - 1)] = static_cast<Index>(rows - 1);
    const double max_norm = std::sqrt(static_cast<double>(dim));
    for (double p : {2.0, 1.0}) {
      Guarded<T> f(rows * dim), r(rows * dim);
      std::memcpy(f.data(), table.data(), table.size() * sizeof(T));
      std::memcpy(r.data(), table.data(), table.size() * sizeof(T));
      fast::renorm_ids(f.data(), dim, ids.data(), n, rows, max_norm, p);
      ref::renorm_ids(r.data(), dim, ids.data(), n, rows, max_norm, p);
      EXPECT_TRUE(same_bits(f, r)) << "norm_type " << p;
      if (p == 2.0) {
        EXPECT_NE(std::memcmp(f.data(), table.data(), table.size() * sizeof(T)), 0);
      }
    }
  }
}

TYPED_TEST(SparseKernels, RenormIds) {
  sweep(
      [](std::int64_t dim, std::uint64_t seed) {
        check_renorm_ids<TypeParam, std::int64_t>(dim, seed);
        check_renorm_ids<TypeParam, std::int32_t>(dim, seed + 1);
      },
      kRowDims);
}

}  // namespace

// ---- The functional ops on top -----------------------------------------------------------------

namespace emb {
namespace {

// embedding_sparse_backward_coalesced: the bits of embedding_sparse_backward(...).coalesce(), with
// and without padding and scale_grad_by_freq, int32 and int64 ids, small and radix-sized inputs,
// at 1 and 3 threads.
TEST(SparseBackwardCoalesced, SameBitsAsBackwardThenCoalesce) {
  detail::set_min_work_per_thread(1);
  const int saved_threads = get_num_threads();
  for (int threads : {1, 3}) {
    set_num_threads(threads);
    for (std::int64_t n : {0, 1, 40, 3000}) {
      for (DType dt : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16}) {
        std::mt19937_64 rng(static_cast<std::uint64_t>(n) + 17);
        const std::int64_t rows = 50, dim = 5;
        const std::vector<std::int64_t> v = random_ids(rng, n, rows);
        const Tensor grad =
            Tensor::from_vector(random_values<float>(rng, n * dim), {n, dim}).to(dt);
        for (DType it : {DType::kInt32, DType::kInt64}) {
          const Tensor ids = Tensor::from_vector(v, {n}).to(it);
          for (const std::optional<std::int64_t> pad :
               {std::optional<std::int64_t>(), std::optional<std::int64_t>(7)}) {
            for (bool sgf : {false, true}) {
              SCOPED_TRACE("threads " + std::to_string(threads) + " n " + std::to_string(n) + " " +
                           std::string(dtype_name(dt)) + " sgf " + std::to_string(sgf));
              const SparseGrad a = embedding_sparse_backward(grad, ids, rows, pad, sgf).coalesce();
              const SparseGrad b = embedding_sparse_backward_coalesced(grad, ids, rows, pad, sgf);
              EXPECT_TRUE(b.is_coalesced());
              EXPECT_TRUE(a.indices().equal(b.indices()));
              ASSERT_EQ(a.values().nbytes(), b.values().nbytes());
              EXPECT_EQ(
                  std::memcmp(a.values().raw_data(), b.values().raw_data(), a.values().nbytes()),
                  0);
            }
          }
        }
      }
    }
  }
  set_num_threads(saved_threads);
  detail::set_min_work_per_thread(std::int64_t{1} << 15);
}

}  // namespace
}  // namespace emb
