// Fast index sorts of the sparse gradient and the renorm: the grouping by row is row_groups.h's
// threaded stable radix sort; the renorm's distinct ids (where it does not mark a bitmap of the
// rows itself) come from a least-significant-digit radix sort (11-bit digits) of the ids.
// A stable sort's result is unique, so these equal their twins (ref::group_rows_by_id,
// ref::sorted_unique_ids) exactly. No SIMD.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <utility>
#include <vector>

#include "kernels/fast_sparse.h"
#include "row_groups.h"

namespace emb::detail::fast {

namespace {

// Sorts keys by their bits [lo, hi), stably; the other bits ride along.
void radix_sort(std::vector<std::uint64_t>& keys, int lo, int hi) {
  constexpr int kDigit = 11;
  std::vector<std::uint64_t> tmp(keys.size());
  std::vector<std::size_t> count((std::size_t{1} << kDigit) + 1);
  for (int b = lo; b < hi; b += kDigit) {
    const int w = std::min(kDigit, hi - b);
    const std::uint64_t mask = (std::uint64_t{1} << w) - 1;
    std::fill(count.begin(), count.end(), 0);
    for (std::uint64_t k : keys) ++count[((k >> b) & mask) + 1];
    if (std::find(count.begin(), count.end(), keys.size()) != count.end()) continue;  // 1 bucket
    for (std::size_t d = 1; d < count.size(); ++d) count[d] += count[d - 1];
    for (std::uint64_t k : keys) tmp[count[(k >> b) & mask]++] = k;
    keys.swap(tmp);
  }
}

// Bits needed for values in [0, v].
int bits_for(std::uint64_t v) {
  return static_cast<int>(std::bit_width(v));
}

// The threaded stable radix grouping the optimizers and the fused step use (row_groups.h), in the
// twin's shape.
template <typename Index>
RowGroups group_rows(const Index* ids, std::int64_t n, std::int64_t padding_idx,
                     std::int64_t num_rows) {
  detail::RowGroups g = group_by_row(ids, n, num_rows, padding_idx);
  RowGroups r;
  r.order = std::move(g.positions);
  r.starts = std::move(g.starts);
  return r;
}

template <typename Index>
std::vector<std::int64_t> unique_ids(const Index* ids, std::int64_t n, std::int64_t num_rows) {
  if (n < 64) return ref::sorted_unique_ids(ids, n, num_rows);
  // (From 64 ids on with a table of at most 64 rows per id, renorm_ids marks a bitmap of the
  // rows instead and does not ask for this list.)
  std::vector<std::uint64_t> keys(ids, ids + n);
  radix_sort(keys, 0, bits_for(static_cast<std::uint64_t>(num_rows - 1)));
  std::vector<std::int64_t> out;
  out.reserve(keys.size());
  for (std::size_t j = 0; j < keys.size(); ++j) {
    if (j == 0 || keys[j] != keys[j - 1]) out.push_back(static_cast<std::int64_t>(keys[j]));
  }
  return out;
}

}  // namespace

RowGroups group_rows_by_id(const std::int32_t* ids, std::int64_t n, std::int64_t padding_idx,
                           std::int64_t num_rows) {
  return group_rows(ids, n, padding_idx, num_rows);
}

RowGroups group_rows_by_id(const std::int64_t* ids, std::int64_t n, std::int64_t padding_idx,
                           std::int64_t num_rows) {
  return group_rows(ids, n, padding_idx, num_rows);
}

std::vector<std::int64_t> sorted_unique_ids(const std::int32_t* ids, std::int64_t n,
                                            std::int64_t num_rows) {
  return unique_ids(ids, n, num_rows);
}

std::vector<std::int64_t> sorted_unique_ids(const std::int64_t* ids, std::int64_t n,
                                            std::int64_t num_rows) {
  return unique_ids(ids, n, num_rows);
}

}  // namespace emb::detail::fast
