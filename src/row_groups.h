// Positions grouped by the table row they name: what a row-sparse gradient needs to be coalesced
// (and an optimizer step applied) without sorting values. Within a row the positions keep their
// input order, so sums over them add in order of appearance, exactly as SparseGrad::coalesce.
//   ids [3, 1, 3, 0], skip none -> rows [0, 1, 3], starts [0, 1, 2, 4], positions [3, 1, 0, 2]
#pragma once

#include <cstdint>
#include <vector>

namespace emb::detail {

struct RowGroups {
  std::vector<std::int64_t> rows;       // [G] distinct row ids, increasing
  std::vector<std::int64_t> starts;     // [G + 1] group g = positions[starts[g] .. starts[g + 1])
  std::vector<std::int64_t> positions;  // grouped positions, input order within a group
};

/// Groups the positions i < n with ids[i] != skip (skip -1: none) by id. ids must lie in
/// [0, num_rows) (validated by the caller). A stable LSD radix sort on the id bits: O(n) time and
/// memory, whatever num_rows.
RowGroups group_by_row(const std::int32_t* ids, std::int64_t n, std::int64_t num_rows,
                       std::int64_t skip);
RowGroups group_by_row(const std::int64_t* ids, std::int64_t n, std::int64_t num_rows,
                       std::int64_t skip);

}  // namespace emb::detail
