#include "row_groups.h"

#include <algorithm>
#include <bit>
#include <utility>

#include "kernels/parallel.h"

namespace emb::detail {

namespace {

constexpr int kDigitBits = 11;

// A key counts as this fraction of the work of an element in threads_for(): a thread sorts
// 8 * min_work_per_thread() keys or more (262,144 by default).
constexpr std::int64_t kKeysPerWorkElement = 8;

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
  // result is the one stable order, whatever the number of chunks. Chunk c of the keys is the kept
  // keys of chunk c of the input, so the first pass's counts come with the keys; with one chunk
  // every pass's counts do (its digits are counted over all keys).
  // Threads only for big inputs: a pass over a quarter million keys takes about a millisecond
  // on one thread, and each pass is a parallel region whose threads wait for the slowest (on a
  // busy machine, one that is not running).
  const int chunks = threads_for(n / kKeysPerWorkElement, std::max<std::int64_t>(n, 1));
  const int passes = (id_bits + kDigitBits - 1) / kDigitBits;
  constexpr std::size_t kBuckets = std::size_t{1} << kDigitBits;
  const int counted = std::min(chunks == 1 ? passes : 1, 3);  // passes counted with the keys
  std::vector<std::size_t> hist(static_cast<std::size_t>(chunks) * kBuckets *
                                static_cast<std::size_t>(std::max(passes, 1)));
  auto hist_of = [&](int c, int pass) {
    return hist.data() + (static_cast<std::size_t>(pass) * chunks + c) * kBuckets;
  };
  std::vector<std::size_t> kept(static_cast<std::size_t>(chunks) + 1, 0);
  auto input_begin = [&](int c) { return n * c / chunks; };
  // Ids are >= 0: with skip < 0 every position is kept and there is nothing to count.
  if (skip < 0) {
    for (int c = 0; c < chunks; ++c)
      kept[static_cast<std::size_t>(c) + 1] = static_cast<std::size_t>(input_begin(c + 1));
  } else {
    parallel_ranges(chunks, n, [&](std::int64_t lo, std::int64_t hi, int, int) {
      for (auto c = static_cast<int>(lo); c < hi; ++c) {
        std::size_t count = 0;
        const std::int64_t end = input_begin(c + 1);
        for (std::int64_t i = input_begin(c); i < end; ++i) count += ids[i] != skip;
        kept[static_cast<std::size_t>(c) + 1] = count;
      }
    });
    for (int c = 0; c < chunks; ++c) kept[c + 1] += kept[c];
  }
  const std::size_t total = kept.back();
  // The keys' bits in int64 vectors: at the end a's become the positions and b's the rows, in
  // place (a call allocates no further buffer of n).
  std::vector<std::int64_t> a(total), b(total);
  parallel_ranges(chunks, n, [&](std::int64_t lo, std::int64_t hi, int, int) {
    for (auto c = static_cast<int>(lo); c < hi; ++c) {
      std::int64_t* out = a.data() + kept[static_cast<std::size_t>(c)];
      const std::int64_t end = input_begin(c + 1);
      std::size_t* h[3] = {};
      for (int p = 0; p < counted; ++p) h[p] = hist_of(c, p);
      for (std::int64_t i = input_begin(c); i < end; ++i) {
        if (ids[i] == skip) continue;
        const auto id = static_cast<std::uint64_t>(ids[i]);
        *out++ = static_cast<std::int64_t>((id << pos_bits) | static_cast<std::uint64_t>(i));
        for (int p = 0; p < counted; ++p) {
          ++h[p][(id >> (p * kDigitBits)) & (kBuckets - 1)];
        }
      }
    }
  });
  for (int pass = 0; pass < passes; ++pass) {
    const int shift = pos_bits + pass * kDigitBits;
    if (pass >= counted) {  // per chunk, the keys of each bucket
      parallel_ranges(chunks, static_cast<std::int64_t>(total),
                      [&](std::int64_t lo, std::int64_t hi, int, int) {
                        for (auto c = static_cast<int>(lo); c < hi; ++c) {
                          std::size_t* h = hist_of(c, pass);
                          const std::int64_t* k = a.data() + kept[static_cast<std::size_t>(c)];
                          const std::int64_t* k_end =
                              a.data() + kept[static_cast<std::size_t>(c) + 1];
                          for (; k != k_end; ++k) {
                            ++h[(static_cast<std::uint64_t>(*k) >> shift) & (kBuckets - 1)];
                          }
                        }
                      });
    }
    // Where chunk c's keys of bucket d start.
    std::size_t sum = 0;
    for (std::size_t d = 0; d < kBuckets; ++d) {
      for (int c = 0; c < chunks; ++c) sum += std::exchange(hist_of(c, pass)[d], sum);
    }
    parallel_ranges(
        chunks, static_cast<std::int64_t>(total), [&](std::int64_t lo, std::int64_t hi, int, int) {
          for (auto c = static_cast<int>(lo); c < hi; ++c) {
            std::size_t* h = hist_of(c, pass);
            std::int64_t* dst = b.data();
            const std::int64_t* k = a.data() + kept[static_cast<std::size_t>(c)];
            const std::int64_t* k_end = a.data() + kept[static_cast<std::size_t>(c) + 1];
            for (; k != k_end; ++k) {
              dst[h[(static_cast<std::uint64_t>(*k) >> shift) & (kBuckets - 1)]++] = *k;
            }
          }
        });
    a.swap(b);
  }
  // The keys are sorted in a; a[k] becomes key k's position, and b (free now) the distinct ids.
  const std::uint64_t pos_mask = pos_bits == 0 ? 0 : (~std::uint64_t{0} >> (64 - pos_bits));
  std::size_t groups = 0;
  g.starts.reserve(total + 1);
  for (std::size_t k = 0; k < total; ++k) {
    const auto key = static_cast<std::uint64_t>(a[k]);
    const auto id = static_cast<std::int64_t>(key >> pos_bits);
    if (groups == 0 || id != b[groups - 1]) {
      b[groups++] = id;
      g.starts.push_back(static_cast<std::int64_t>(k));
    }
    a[k] = static_cast<std::int64_t>(key & pos_mask);
  }
  g.starts.push_back(static_cast<std::int64_t>(total));
  b.resize(groups);
  g.positions = std::move(a);
  g.rows = std::move(b);
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
