#include "row_groups.h"

#include <algorithm>
#include <bit>
#include <utility>

#include "kernels/parallel.h"

namespace emb::detail {

namespace {

constexpr int kDigitBits = 11;

// Fills g from (id, position) keys sorted by id, positions increasing within an id.
template <typename Id, typename Pos>
void fill_groups(RowGroups& g, std::size_t count, Id&& id_of, Pos&& pos_of) {
  g.positions.resize(count);
  g.rows.reserve(count);
  g.starts.reserve(count + 1);
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
  const int id_bits =
      std::bit_width(static_cast<std::uint64_t>(std::max<std::int64_t>(num_rows, 1) - 1));
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
  // keeps each id's positions in order. The keys are cut into chunks (one per thread); a chunk's
  // keys go to their buckets after those of the chunks before it, so every pass is stable and the
  // result is the one stable order, whatever the number of chunks.
  const int chunks = threads_for(n, std::max<std::int64_t>(n, 1));
  auto chunk_begin = [&](std::int64_t total, int c) { return total * c / chunks; };
  std::vector<std::size_t> kept(static_cast<std::size_t>(chunks) + 1, 0);
  parallel_ranges(chunks, n, [&](std::int64_t lo, std::int64_t hi, int, int) {
    for (std::int64_t c = lo; c < hi; ++c) {
      std::size_t count = 0;
      for (std::int64_t i = chunk_begin(n, int(c)); i < chunk_begin(n, int(c) + 1); ++i) {
        count += ids[i] != skip;
      }
      kept[static_cast<std::size_t>(c) + 1] = count;
    }
  });
  for (int c = 0; c < chunks; ++c) kept[c + 1] += kept[c];
  std::vector<std::uint64_t> a(kept.back());
  parallel_ranges(chunks, n, [&](std::int64_t lo, std::int64_t hi, int, int) {
    for (std::int64_t c = lo; c < hi; ++c) {
      std::size_t out = kept[static_cast<std::size_t>(c)];
      for (std::int64_t i = chunk_begin(n, int(c)); i < chunk_begin(n, int(c) + 1); ++i) {
        if (ids[i] != skip) {
          a[out++] =
              (static_cast<std::uint64_t>(ids[i]) << pos_bits) | static_cast<std::uint64_t>(i);
        }
      }
    }
  });
  const auto count = static_cast<std::int64_t>(a.size());
  std::vector<std::uint64_t> b(a.size());
  constexpr std::size_t kBuckets = std::size_t{1} << kDigitBits;
  std::vector<std::size_t> hist(static_cast<std::size_t>(chunks) * kBuckets);
  for (int shift = pos_bits; shift < pos_bits + id_bits; shift += kDigitBits) {
    // Per chunk, the keys of each bucket; then where chunk c's keys of bucket d start.
    parallel_ranges(chunks, count, [&](std::int64_t lo, std::int64_t hi, int, int) {
      for (std::int64_t c = lo; c < hi; ++c) {
        std::size_t* h = hist.data() + c * kBuckets;
        std::fill(h, h + kBuckets, 0);
        for (std::int64_t k = chunk_begin(count, int(c)); k < chunk_begin(count, int(c) + 1); ++k) {
          ++h[(a[k] >> shift) & (kBuckets - 1)];
        }
      }
    });
    std::size_t sum = 0;
    for (std::size_t d = 0; d < kBuckets; ++d) {
      for (int c = 0; c < chunks; ++c) sum += std::exchange(hist[c * kBuckets + d], sum);
    }
    parallel_ranges(chunks, count, [&](std::int64_t lo, std::int64_t hi, int, int) {
      for (std::int64_t c = lo; c < hi; ++c) {
        std::size_t* h = hist.data() + c * kBuckets;
        for (std::int64_t k = chunk_begin(count, int(c)); k < chunk_begin(count, int(c) + 1); ++k) {
          b[h[(a[k] >> shift) & (kBuckets - 1)]++] = a[k];
        }
      }
    });
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
