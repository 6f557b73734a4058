#include "row_groups.h"

#include <algorithm>
#include <bit>
#include <utility>

namespace emb::detail {

namespace {

constexpr int kDigitBits = 11;

// Fills g from (id, position) keys sorted by id, positions increasing within an id.
template <typename Id, typename Pos>
void fill_groups(RowGroups& g, std::size_t count, Id&& id_of, Pos&& pos_of) {
  g.positions.resize(count);
  for (std::size_t k = 0; k < count; ++k) {
    const std::int64_t id = id_of(k);
    if (k == 0 || id != g.rows.back()) {
      g.rows.push_back(id);
      g.starts.push_back(static_cast<std::int64_t>(k));
    }
    g.positions[k] = pos_of(k);
  }
  g.starts.push_back(static_cast<std::int64_t>(count));
}

template <typename Index>
RowGroups group_typed(const Index* ids, std::int64_t n, std::int64_t num_rows, std::int64_t skip) {
  RowGroups g;
  const int pos_bits = std::bit_width(static_cast<std::uint64_t>(n));
  const int id_bits = std::bit_width(static_cast<std::uint64_t>(std::max<std::int64_t>(num_rows, 1) - 1));
  if (pos_bits + id_bits > 64) {  // beyond any real input: a comparison sort
    std::vector<std::pair<std::int64_t, std::int64_t>> keys;
    for (std::int64_t i = 0; i < n; ++i) {
      if (ids[i] != skip) keys.emplace_back(static_cast<std::int64_t>(ids[i]), i);
    }
    std::stable_sort(keys.begin(), keys.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    fill_groups(
        g, keys.size(), [&](std::size_t k) { return keys[k].first; },
        [&](std::size_t k) { return keys[k].second; });
    return g;
  }
  // key = id << pos_bits | position: in input order already, so a stable sort on the id bits
  // keeps each id's positions in order.
  std::vector<std::uint64_t> a;
  a.reserve(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    if (ids[i] != skip) {
      a.push_back((static_cast<std::uint64_t>(ids[i]) << pos_bits) | static_cast<std::uint64_t>(i));
    }
  }
  std::vector<std::uint64_t> b(a.size());
  std::vector<std::size_t> hist;
  for (int shift = pos_bits; shift < pos_bits + id_bits; shift += kDigitBits) {
    const int bits = std::min(kDigitBits, pos_bits + id_bits - shift);
    const std::uint64_t mask = (std::uint64_t{1} << bits) - 1;
    hist.assign(std::size_t{1} << bits, 0);
    for (std::uint64_t k : a) ++hist[(k >> shift) & mask];
    std::size_t sum = 0;
    for (auto& h : hist) sum += std::exchange(h, sum);
    for (std::uint64_t k : a) b[hist[(k >> shift) & mask]++] = k;
    a.swap(b);
  }
  const std::uint64_t pos_mask = pos_bits == 0 ? 0 : (~std::uint64_t{0} >> (64 - pos_bits));
  fill_groups(
      g, a.size(), [&](std::size_t k) { return static_cast<std::int64_t>(a[k] >> pos_bits); },
      [&](std::size_t k) { return static_cast<std::int64_t>(a[k] & pos_mask); });
  return g;
}

}  // namespace

RowGroups group_by_row(const std::int32_t* ids, std::int64_t n, std::int64_t num_rows,
                       std::int64_t skip) {
  return group_typed(ids, n, num_rows, skip);
}

RowGroups group_by_row(const std::int64_t* ids, std::int64_t n, std::int64_t num_rows,
                       std::int64_t skip) {
  return group_typed(ids, n, num_rows, skip);
}

}  // namespace emb::detail
