// emb against libtorch 1.13 and against a plain C++ probe (the machine's limit), in one process, on
// the same inputs (the torch tensors view emb's memory). Each case first checks that emb and the
// anchor compute the same thing, then times them interleaved and keeps the medians.
//
//   compare_bench [--quick] [--out DIR] [--only NAME[,NAME...]]
//
// --only times just the cases whose names contain one of the NAMEs (the checks of the tables those
// cases use still run; tables no selected case can use are not made).
//
// Writes DIR/compare.tsv (`case emb_ns anchor anchor_ns speedup`, ns per id, or per call for the
// single-call cases; speedup = anchor_ns / emb_ns) and DIR/compare_spread.tsv (min / median / max
// of the per-repetition speedups), and prints the same lines.
#include <omp.h>
#include <torch/torch.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench_report.h"
#include "emb/emb.h"

namespace {

using emb::bench::Report;
using emb::bench::time_ns;

struct Config {
  bool quick = false;
  int reps = 7;
  std::int64_t n_ids = 1000000;  // ids per call (a whole number of bags)
  std::int64_t bag = 20;         // ids per bag
  std::string out_dir = "build/bench";
  std::vector<std::string> only;  // empty: every case
};

// Whether --only lets the case `name` be timed.
bool selected(const Config& cfg, const std::string& name) {
  if (cfg.only.empty()) return true;
  return std::any_of(cfg.only.begin(), cfg.only.end(),
                     [&](const std::string& part) { return name.find(part) != std::string::npos; });
}

// Whether --only can select a case of the table that table_cases() names with `sfx`
// ("_cold_zipf_d64": the case names are op + sfx + "_t1" / "_t2"), so that a table no selected case
// uses is not made. Errs on the side of making it: a NAME that names no table (no "_cold" or
// "_hot") may select any table, but one with "_zipf" only Zipf tables and one with "_dN" only a
// width that "_dN" begins, and one with "call_" (a single-call case) none.
bool table_selected(const Config& cfg, const std::string& sfx) {
  if (cfg.only.empty()) return true;
  const bool zipf = sfx.find("_zipf") != std::string::npos;
  const std::string width = sfx.substr(sfx.find("_d"));  // "_d64"
  return std::any_of(cfg.only.begin(), cfg.only.end(), [&](const std::string& part) {
    if (part.find("call_") != std::string::npos) return false;  // the single calls' own table
    const std::size_t at = std::min(part.find("_cold"), part.find("_hot"));
    if (at != std::string::npos) {  // the rest of the NAME begins the case's suffix
      const std::string rest = part.substr(at);
      return (sfx + "_t1").rfind(rest, 0) == 0 || (sfx + "_t2").rfind(rest, 0) == 0;
    }
    if (part.find("_zipf") != std::string::npos && !zipf) return false;
    for (std::size_t d = part.find("_d"); d != std::string::npos; d = part.find("_d", d + 1)) {
      std::size_t e = d + 2;
      while (e < part.size() && part[e] >= '0' && part[e] <= '9') ++e;
      if (e > d + 2 && width.rfind(part.substr(d, e - d), 0) != 0) return false;
    }
    return true;
  });
}

// ---- Inputs ----------------------------------------------------------------------------------

std::uint64_t mix(std::uint64_t x) {  // splitmix64
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// n floats in [-1, 1), filled by all threads.
void fill_uniform(float* p, std::int64_t n, std::uint64_t seed) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    p[i] = static_cast<float>(
        static_cast<double>(mix(seed ^ static_cast<std::uint64_t>(i)) >> 11) * 0x1.0p-52 - 1.0);
  }
}

emb::Tensor random_floats(const emb::Shape& shape, std::uint64_t seed) {
  emb::Tensor t = emb::Tensor::empty(shape, emb::DType::kFloat32);
  fill_uniform(t.data<float>(), t.numel(), seed);
  return t;
}

emb::Tensor uniform_ids(std::int64_t n, std::int64_t rows, std::uint64_t seed) {
  emb::Tensor t = emb::Tensor::empty({n}, emb::DType::kInt64);
  std::int64_t* p = t.data<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    p[i] = static_cast<std::int64_t>(mix(seed + static_cast<std::uint64_t>(i)) %
                                     static_cast<std::uint64_t>(rows));
  }
  return t;
}

// n ids of a Zipf(s) law over the rows: rank r (0 = the most frequent) has weight 1 / (r + 1)^s,
// drawn by inverting the CDF; ranks are spread over the table by an odd multiplier (rows is a
// power of 2), so that the frequent rows are not neighbours.
emb::Tensor zipf_ids(std::int64_t n, std::int64_t rows, double s, std::uint64_t seed) {
  std::vector<double> cdf(static_cast<std::size_t>(rows));
  double total = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    total += std::pow(static_cast<double>(r + 1), -s);
    cdf[static_cast<std::size_t>(r)] = total;
  }
  emb::Tensor t = emb::Tensor::empty({n}, emb::DType::kInt64);
  std::int64_t* p = t.data<std::int64_t>();
  const auto mask = static_cast<std::uint64_t>(rows - 1);
  for (std::int64_t i = 0; i < n; ++i) {
    const double u =
        static_cast<double>(mix(seed + static_cast<std::uint64_t>(i)) >> 11) * 0x1.0p-53 * total;
    const auto rank =
        static_cast<std::uint64_t>(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
    p[i] = static_cast<std::int64_t>((std::min<std::uint64_t>(rank, mask) * 0x9E3779B97F4A7C15ull) &
                                     mask);
  }
  return t;
}

emb::Tensor bag_offsets(std::int64_t n, std::int64_t bag) {
  emb::Tensor t = emb::Tensor::empty({n / bag}, emb::DType::kInt64);
  for (std::int64_t b = 0; b < n / bag; ++b) t.data<std::int64_t>()[b] = b * bag;
  return t;
}

// A torch tensor over the same memory.
torch::Tensor as_torch(const emb::Tensor& t) {
  std::vector<std::int64_t> shape(t.shape().begin(), t.shape().end());
  const auto dtype = t.dtype() == emb::DType::kInt64 ? torch::kLong : torch::kFloat;
  return torch::from_blob(const_cast<void*>(t.raw_data()), shape,
                          torch::TensorOptions().dtype(dtype));
}

bool same_bits(const emb::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor c = b.contiguous();
  return a.nbytes() == c.nbytes() && std::memcmp(a.raw_data(), c.data_ptr(), a.nbytes()) == 0;
}

// The largest |a - b| (the values compared are sums of a few terms in [-1, 1)).
double max_abs_diff(const emb::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor c = b.contiguous();
  if (a.numel() != c.numel()) return INFINITY;
  const float* x = a.data<float>();
  const float* y = c.data_ptr<float>();
  double worst = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    worst = std::max(worst, std::abs(double(x[i]) - double(y[i])));
  }
  return worst;
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "compare_bench: check failed: %s\n", what.c_str());
  std::exit(1);
}

void check(bool ok, const std::string& what) {
  if (!ok) fail(what);
}

// ---- The probe: plain C++ loops, what this machine allows ------------------------------------

constexpr std::int64_t kAhead = 16;

// Into the outer caches (locality 2: x86's prefetcht1), which keeps more rows in flight than the
// level-1 hint on the machines measured.
inline void prefetch_row(const float* row, std::int64_t dim) {
  for (std::int64_t off = 0; off < dim; off += 16) __builtin_prefetch(row + off, 0, 2);
}

// The probe's loops take the row width as a constant where they can (D = 32, 64, 128, 256), so
// that a row's copy or sum is a fixed run of vector instructions and a bag's sum stays in
// registers; other widths run the same loop with a run-time width. A row is copied element by
// element (the compiler's vector copy), not by memcpy, which is slower for the widest rows.
//
// An output too big to stay in the caches is written with non-temporal (streaming) stores, which
// skip reading each output line from memory first: the machine's limit for that case.
#if defined(__AVX512F__)
constexpr std::int64_t kStreamFloats = 16;
inline void stream_floats(float* to, const float* from) {
  _mm512_stream_ps(to, _mm512_loadu_ps(from));
}
#elif defined(__AVX__)
constexpr std::int64_t kStreamFloats = 8;
inline void stream_floats(float* to, const float* from) {
  _mm256_stream_ps(to, _mm256_loadu_ps(from));
}
#else
constexpr std::int64_t kStreamFloats = 0;  // no streaming stores: the plain copy
inline void stream_floats(float*, const float*) {}
#endif
constexpr std::int64_t kStreamBytes = std::int64_t{16} << 20;

template <std::int64_t kDim, bool kStream>
void probe_gather_loop(const float* table, std::int64_t dim, const std::int64_t* ids,
                       std::int64_t n, float* out) {
  const std::int64_t w = kDim > 0 ? kDim : dim;
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (std::int64_t i = 0; i < n; ++i) {
      if (i + kAhead < n) prefetch_row(table + ids[i + kAhead] * w, w);
      const float* row = table + ids[i] * w;
      float* o = out + i * w;
      if constexpr (kStream) {
#pragma GCC unroll 16
        for (std::int64_t d = 0; d < w; d += kStreamFloats) stream_floats(o + d, row + d);
      } else {
        for (std::int64_t d = 0; d < w; ++d) o[d] = row[d];
      }
    }
#if defined(__AVX__)
    if constexpr (kStream) _mm_sfence();
#endif
  }
}

template <std::int64_t kDim>
void probe_gather_fixed(const float* table, std::int64_t dim, const std::int64_t* ids,
                        std::int64_t n, float* out) {
  const std::int64_t w = kDim > 0 ? kDim : dim;
  const bool stream = kStreamFloats > 0 && n * w * 4 >= kStreamBytes && w % kStreamFloats == 0 &&
                      reinterpret_cast<std::uintptr_t>(out) % (kStreamFloats * 4) == 0;
  if (stream) {
    probe_gather_loop<kDim, true>(table, dim, ids, n, out);
  } else {
    probe_gather_loop<kDim, false>(table, dim, ids, n, out);
  }
}

// A sequential copy of n floats over the threads; an output of kStreamBytes or more (aligned,
// whole vectors) with streaming stores.
void probe_copy(const float* from, std::int64_t n, float* to) {
  const bool stream = kStreamFloats > 0 && n * 4 >= kStreamBytes && n % kStreamFloats == 0 &&
                      reinterpret_cast<std::uintptr_t>(to) % (kStreamFloats * 4) == 0;
  if (!stream) {
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n; ++i) to[i] = from[i];
    return;
  }
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (std::int64_t i = 0; i < n / kStreamFloats; ++i) {
      stream_floats(to + i * kStreamFloats, from + i * kStreamFloats);
    }
#if defined(__AVX__)
    _mm_sfence();
#endif
  }
}

// The sums a bag keeps in registers: 8 vectors (16 of AVX2's registers, half of AVX-512's); a
// wider row is summed in blocks of that many elements, one pass over the bag per block (the
// first pass prefetches the whole rows). As emb does, a row of more than 256 bytes that fits one
// block (AVX-512: D = 128) is summed in two passes of half the row, which ran faster here.
#ifdef __AVX512F__
constexpr std::int64_t kSumBlock = 128;
#else
constexpr std::int64_t kSumBlock = 64;
#endif

template <std::int64_t kDim>
void probe_bag_sum_fixed(const float* table, std::int64_t dim, const std::int64_t* ids,
                         std::int64_t n, std::int64_t bag, float* out) {
  const std::int64_t w = kDim > 0 ? kDim : dim;
  constexpr std::int64_t kBlock = kDim <= 0 || kDim > kSumBlock ? kSumBlock
                                  : kDim * 4 > 256              ? kDim / 2
                                                                : kDim;
  const std::int64_t bags = n / bag;
#pragma omp parallel for schedule(static)
  for (std::int64_t b = 0; b < bags; ++b) {
    for (std::int64_t c = 0; c < w; c += kBlock) {
      const std::int64_t width = std::min(kBlock, w - c);
      float acc[kBlock];
      for (std::int64_t d = 0; d < kBlock; ++d) acc[d] = 0.0f;
      for (std::int64_t i = b * bag; i < (b + 1) * bag; ++i) {
        if (c == 0 && i + kAhead < n) prefetch_row(table + ids[i + kAhead] * w, w);
        const float* row = table + ids[i] * w + c;
        if (kDim > 0) {  // width == kBlock, known here
          for (std::int64_t d = 0; d < kBlock; ++d) acc[d] += row[d];
        } else {
          for (std::int64_t d = 0; d < width; ++d) acc[d] += row[d];
        }
      }
      std::memcpy(out + b * w + c, acc, static_cast<std::size_t>(width) * 4);
    }
  }
}

// out[i] = table[ids[i]], a prefetching gather into a buffer already faulted in.
void probe_gather(const float* table, std::int64_t dim, const std::int64_t* ids, std::int64_t n,
                  float* out) {
  switch (dim) {
    case 32:
      return probe_gather_fixed<32>(table, dim, ids, n, out);
    case 64:
      return probe_gather_fixed<64>(table, dim, ids, n, out);
    case 128:
      return probe_gather_fixed<128>(table, dim, ids, n, out);
    case 256:
      return probe_gather_fixed<256>(table, dim, ids, n, out);
    default:
      return probe_gather_fixed<0>(table, dim, ids, n, out);
  }
}

// out[b] = sum of the bag's rows, fixed-size bags, a prefetching loop.
void probe_bag_sum(const float* table, std::int64_t dim, const std::int64_t* ids, std::int64_t n,
                   std::int64_t bag, float* out) {
  switch (dim) {
    case 32:
      return probe_bag_sum_fixed<32>(table, dim, ids, n, bag, out);
    case 64:
      return probe_bag_sum_fixed<64>(table, dim, ids, n, bag, out);
    case 128:
      return probe_bag_sum_fixed<128>(table, dim, ids, n, bag, out);
    case 256:
      return probe_bag_sum_fixed<256>(table, dim, ids, n, bag, out);
    default:
      return probe_bag_sum_fixed<0>(table, dim, ids, n, bag, out);
  }
}

// ---- Cases ------------------------------------------------------------------------------------

// Times emb and the anchor interleaved (after one warm-up call each); `units` divides the times.
void compare(Report& report, const Config& cfg, const std::string& name, double units,
             const std::function<void()>& emb_fn, const std::string& anchor,
             const std::function<void()>& anchor_fn, int reps = 0) {
  if (!selected(cfg, name)) return;
  emb_fn();
  anchor_fn();
  std::vector<double> e, a;
  for (int r = 0; r < (reps > 0 ? reps : cfg.reps); ++r) {
    e.push_back(time_ns(emb_fn) / units);
    a.push_back(time_ns(anchor_fn) / units);
  }
  report.add(name, e, anchor, a);
}

// The backward cases allocate and free a whole gradient per call. One repetition times
// kSteadyCalls calls in a row, as a training loop makes them: what a call costs once the
// memory it frees is what the next one gets (on a virtual machine the first touch of memory
// the host has reclaimed costs several times more, and the other side's calls in between
// would otherwise make every call such a first one).
// These cases take up to seconds per call (libtorch's 1 GiB gradient): 3 repetitions of 3.
constexpr int kSteadyCalls = 3;
constexpr int kSteadyReps = 3;

std::function<void()> steady(const std::function<void()>& f) {
  return [f] {
    for (int c = 0; c < kSteadyCalls; ++c) f();
  };
}

void set_threads(int t) {
  emb::set_num_threads(t);
  at::set_num_threads(t);
  omp_set_num_threads(t);
}

// 2 threads against 1 on the same call: emb at 2 threads (emb_ns) against itself at 1 (anchor
// "one_thread"; speedup = t1 / t2), the two interleaved repetition by repetition so that each
// ratio's two sides share one moment of a shared machine (the _t1 and _t2 cases are timed
// seconds apart, and this machine's speed moves by more than the ratio's noise in that time).
// Only emb's thread count switches: at::set_num_threads also remakes libtorch's own thread
// pool, whose new threads spin for a while and took a core from both sides (measured: t2 as slow
// as t1). Called with 2 threads set; leaves them set.
void scaling(Report& report, const Config& cfg, const std::string& name, double units,
             const std::function<void()>& fn, int reps = 0) {
  const auto emb_threads = [](int t) {
    emb::set_num_threads(t);
    omp_set_num_threads(t);
  };
  compare(
      report, cfg, name, units,
      [&] {
        emb_threads(2);
        fn();
      },
      "one_thread",
      [&] {
        emb_threads(1);
        fn();
      },
      reps);
  emb_threads(2);
}

// A float32 tensor of zeros, every page written.
emb::Tensor written_zeros(const emb::Shape& shape) {
  emb::Tensor t = emb::Tensor::empty(shape, emb::DType::kFloat32);
  std::memset(t.data<float>(), 0, t.nbytes());
  return t;
}

// Which ids a case draws.
enum class Dist { kUniform, kZipf };

// Forward (and, with `full`, every other) case on one [rows, dim] float32 table (rows a power of
// 2), at 1 and 2 threads. Case names: op_tag[_zipf]_dD_tT.
void table_cases(Report& report, const Config& base_cfg, const std::string& tag, std::int64_t rows,
                 std::int64_t dim, Dist dist, bool full) {
  // A hot table's call takes milliseconds, where a moment of the other core's work moves a median
  // by a third: twice the repetitions.
  Config cfg = base_cfg;
  if (tag == "hot") cfg.reps = 2 * base_cfg.reps;
  if (!table_selected(
          cfg, "_" + tag + (dist == Dist::kZipf ? "_zipf" : "") + "_d" + std::to_string(dim))) {
    return;
  }
  // At most 256 MiB of output per call (D = 256 looks up a quarter of the ids).
  const std::int64_t n =
      std::min(cfg.n_ids, ((std::int64_t{256} << 20) / (dim * 4)) / cfg.bag * cfg.bag);
  const emb::Tensor table = random_floats({rows, dim}, 1);
  const emb::Tensor ids =
      dist == Dist::kZipf ? zipf_ids(n, rows, 1.05, 2) : uniform_ids(n, rows, 2);
  const emb::Tensor offsets = bag_offsets(n, cfg.bag);
  const std::int64_t bags = n / cfg.bag;
  torch::Tensor t_table = as_torch(table);  // not const: embedding_renorm_ takes Tensor&
  const torch::Tensor t_ids = as_torch(ids), t_offsets = as_torch(offsets);
  // The probe's output and embedding_out's: written once here, so that no timed call faults them
  // in, and from Tensor::empty, so that they have the pages emb's own outputs have (huge pages
  // where the system gives them).
  emb::Tensor probe_out = written_zeros({n, dim});
  // Preallocated outputs (embedding_out; libtorch's index_select_out, which its embedding runs).
  const emb::Tensor out = written_zeros({n, dim});
  torch::Tensor t_out = torch::zeros({n, dim});
  for (int threads : {1, 2}) {
    if (cfg.quick && threads == 2 && !full) continue;
    set_threads(threads);
    const std::string sfx = "_" + tag + (dist == Dist::kZipf ? "_zipf" : "") + "_d" +
                            std::to_string(dim) + "_t" + std::to_string(threads);
    // The cold uniform table's cases at 2 threads also get a line against 1 thread (anchor
    // one_thread), the two interleaved.
    const bool scale = threads == 2 && tag == "cold" && dist == Dist::kUniform && !cfg.quick;

    // Forward gather: into a new tensor (as embedding() returns one), and into a preallocated one.
    check(same_bits(emb::embedding(ids, table), torch::embedding(t_table, t_ids)), "gather" + sfx);
    probe_gather(table.data<float>(), dim, ids.data<std::int64_t>(), n, probe_out.data<float>());
    check(same_bits(emb::embedding(ids, table), as_torch(probe_out)), "probe gather" + sfx);
    auto emb_gather = [&] { emb::embedding(ids, table); };
    compare(report, cfg, "gather" + sfx, double(n), emb_gather, "libtorch",
            [&] { torch::embedding(t_table, t_ids); });
    auto probe = [&] {
      probe_gather(table.data<float>(), dim, ids.data<std::int64_t>(), n, probe_out.data<float>());
    };
    compare(report, cfg, "gather" + sfx, double(n), emb_gather, "probe", probe);
    if (scale) {
      scaling(report, cfg, "gather" + sfx, double(n), emb_gather);
      scaling(report, cfg, "probe_gather" + sfx, double(n), probe);
    }
    emb::embedding_out(ids, table, out);
    at::index_select_out(t_out, t_table, 0, t_ids);
    check(same_bits(out, t_out), "gather_out" + sfx);
    auto emb_gather_out = [&] { emb::embedding_out(ids, table, out); };
    compare(report, cfg, "gather_out" + sfx, double(n), emb_gather_out, "libtorch",
            [&] { at::index_select_out(t_out, t_table, 0, t_ids); });
    compare(report, cfg, "gather_out" + sfx, double(n), emb_gather_out, "probe", probe);
    if (scale) scaling(report, cfg, "gather_out" + sfx, double(n), emb_gather_out);

    // Bag sum, against libtorch and the probe.
    const auto bag_opts = [](emb::EmbeddingBagMode m) {
      return emb::EmbeddingBagFuncOptions().mode(m);
    };
    const auto sum = bag_opts(emb::EmbeddingBagMode::kSum);
    check(same_bits(emb::embedding_bag(ids, table, offsets, sum),
                    std::get<0>(at::embedding_bag(t_table, t_ids, t_offsets, false, 0))),
          "bag_sum" + sfx);
    probe_bag_sum(table.data<float>(), dim, ids.data<std::int64_t>(), n, cfg.bag,
                  probe_out.data<float>());
    check(same_bits(emb::embedding_bag(ids, table, offsets, sum),
                    as_torch(probe_out).narrow(0, 0, bags)),
          "probe bag_sum" + sfx);
    auto emb_sum = [&] { emb::embedding_bag(ids, table, offsets, sum); };
    compare(report, cfg, "bag_sum" + sfx, double(n), emb_sum, "libtorch",
            [&] { at::embedding_bag(t_table, t_ids, t_offsets, false, 0); });
    auto probe_sum = [&] {
      probe_bag_sum(table.data<float>(), dim, ids.data<std::int64_t>(), n, cfg.bag,
                    probe_out.data<float>());
    };
    compare(report, cfg, "bag_sum" + sfx, double(n), emb_sum, "probe", probe_sum);
    if (scale) {
      scaling(report, cfg, "bag_sum" + sfx, double(n), emb_sum);
      scaling(report, cfg, "probe_bag_sum" + sfx, double(n), probe_sum);
    }
    if (full && threads == 1 && dim == 64 && tag == "cold") {
      // Shaped like FBGEMM's own benchmark: a 4M x 64 table (this one), bags of 100, 1 thread.
      const emb::Tensor offsets100 = bag_offsets(n, 100);
      const torch::Tensor t_offsets100 = as_torch(offsets100);
      check(same_bits(emb::embedding_bag(ids, table, offsets100, sum),
                      std::get<0>(at::embedding_bag(t_table, t_ids, t_offsets100, false, 0))),
            "bag_sum_fbgemm_shape");
      compare(
          report, cfg, "bag_sum_bags100" + sfx, double(n),
          [&] { emb::embedding_bag(ids, table, offsets100, sum); }, "libtorch",
          [&] { at::embedding_bag(t_table, t_ids, t_offsets100, false, 0); });
    }
    if (!full) continue;

    // The other bag modes.
    const auto mean = bag_opts(emb::EmbeddingBagMode::kMean);
    const auto max = bag_opts(emb::EmbeddingBagMode::kMax);
    check(same_bits(emb::embedding_bag(ids, table, offsets, mean),
                    std::get<0>(at::embedding_bag(t_table, t_ids, t_offsets, false, 1))),
          "bag_mean" + sfx);
    auto emb_mean = [&] { emb::embedding_bag(ids, table, offsets, mean); };
    compare(report, cfg, "bag_mean" + sfx, double(n), emb_mean, "libtorch",
            [&] { at::embedding_bag(t_table, t_ids, t_offsets, false, 1); });
    if (scale) scaling(report, cfg, "bag_mean" + sfx, double(n), emb_mean);
    check(same_bits(emb::embedding_bag(ids, table, offsets, max),
                    std::get<0>(at::embedding_bag(t_table, t_ids, t_offsets, false, 2))),
          "bag_max" + sfx);
    auto emb_max = [&] { emb::embedding_bag(ids, table, offsets, max); };
    compare(report, cfg, "bag_max" + sfx, double(n), emb_max, "libtorch",
            [&] { at::embedding_bag(t_table, t_ids, t_offsets, false, 2); });
    if (scale) scaling(report, cfg, "bag_max" + sfx, double(n), emb_max);
    const emb::Tensor psw = random_floats({n}, 3);
    const torch::Tensor t_psw = as_torch(psw);
    check(same_bits(
              emb::embedding_bag(ids, table, offsets, sum, psw),
              std::get<0>(at::embedding_bag(t_table, t_ids, t_offsets, false, 0, false, t_psw))),
          "bag_sum_psw" + sfx);
    auto emb_psw = [&] { emb::embedding_bag(ids, table, offsets, sum, psw); };
    compare(report, cfg, "bag_sum_psw" + sfx, double(n), emb_psw, "libtorch",
            [&] { at::embedding_bag(t_table, t_ids, t_offsets, false, 0, false, t_psw); });
    if (scale) scaling(report, cfg, "bag_sum_psw" + sfx, double(n), emb_psw);
    // padding_idx: one row in 20 ids is the padding row.
    const std::int64_t pad = rows - 1;
    emb::Tensor pad_ids = ids.clone();
    for (std::int64_t i = 0; i < n; i += 20) pad_ids.data<std::int64_t>()[i] = pad;
    const torch::Tensor t_pad_ids = as_torch(pad_ids);
    auto sum_pad = sum;
    sum_pad.padding_idx(pad);
    check(same_bits(emb::embedding_bag(pad_ids, table, offsets, sum_pad),
                    std::get<0>(at::embedding_bag(t_table, t_pad_ids, t_offsets, false, 0, false,
                                                  {}, false, pad))),
          "bag_sum_pad" + sfx);
    auto emb_pad = [&] { emb::embedding_bag(pad_ids, table, offsets, sum_pad); };
    compare(report, cfg, "bag_sum_pad" + sfx, double(n), emb_pad, "libtorch", [&] {
      at::embedding_bag(t_table, t_pad_ids, t_offsets, false, 0, false, {}, false, pad);
    });
    if (scale) scaling(report, cfg, "bag_sum_pad" + sfx, double(n), emb_pad);

    // Backward: the dense gradient of a lookup, sparse, the bag's dense gradient, psw gradient.
    const emb::Tensor grad = random_floats({n, dim}, 4);
    const torch::Tensor t_grad = as_torch(grad);
    check(same_bits(emb::embedding_dense_backward(grad, ids, rows, std::nullopt, false),
                    at::embedding_dense_backward(t_grad, t_ids, rows, -1, false)),
          "dense_backward" + sfx);
    const auto emb_dense_backward =
        steady([&] { emb::embedding_dense_backward(grad, ids, rows, std::nullopt, false); });
    compare(report, cfg, "dense_backward" + sfx, double(n) * kSteadyCalls, emb_dense_backward,
            "libtorch",
            steady([&] { at::embedding_dense_backward(t_grad, t_ids, rows, -1, false); }),
            kSteadyReps);
    if (scale) {
      scaling(report, cfg, "dense_backward" + sfx, double(n) * kSteadyCalls, emb_dense_backward,
              kSteadyReps);
    }
    {  // A dense training cycle as a loop runs it: backward, SGD step, zero_grad (set to none),
       // so the gradient's page faults and its freeing are counted. Each side trains its own
       // copy of the table; after the warm-up and timed cycles the two copies must agree.
      emb::Parameter param(table.clone());
      emb::optim::SGD sgd({&param}, emb::optim::SGDOptions(0.01));
      torch::Tensor t_weight = as_torch(table).clone();
      torch::optim::SGD t_sgd({t_weight}, torch::optim::SGDOptions(0.01));
      auto emb_cycle = [&] {
        param.accumulate_grad(emb::embedding_dense_backward(grad, ids, rows, std::nullopt, false));
        sgd.step();
        param.zero_grad();
      };
      auto torch_cycle = [&] {
        t_weight.mutable_grad() = at::embedding_dense_backward(t_grad, t_ids, rows, -1, false);
        t_sgd.step();
        t_weight.mutable_grad().reset();
      };
      emb_cycle();
      torch_cycle();
      check(same_bits(param.data(), t_weight), "dense_cycle_sgd" + sfx);
      compare(report, cfg, "dense_cycle_sgd" + sfx, double(n) * kSteadyCalls, steady(emb_cycle),
              "libtorch", steady(torch_cycle), kSteadyReps);
      if (selected(cfg, "dense_cycle_sgd" + sfx)) {
        check(same_bits(param.data(), t_weight), "dense_cycle_sgd after timing" + sfx);
      }
    }
    {  // the sparse gradient, coalesced (what an optimizer step consumes)
      const emb::SparseGrad s =
          emb::embedding_sparse_backward_coalesced(grad, ids, rows, std::nullopt, false);
      const torch::Tensor ts =
          at::embedding_sparse_backward(t_grad, t_ids, rows, -1, false).coalesce();
      // libtorch sums a row's duplicates in its own order: equal within rounding.
      check(same_bits(s.indices(), ts._indices().reshape({-1})) &&
                max_abs_diff(s.values(), ts._values()) < 1e-4,
            "sparse_backward_coalesced" + sfx);
      std::printf("# sparse_backward_coalesced%s: values %s\n", sfx.c_str(),
                  same_bits(s.values(), ts._values()) ? "bitwise equal to libtorch"
                                                      : "equal within rounding");
    }
    // emb's one-pass coalesced gradient, and its two steps (the uncoalesced rows, then
    // coalesce()), each against libtorch's two steps.
    auto torch_sparse = [&] {
      at::embedding_sparse_backward(t_grad, t_ids, rows, -1, false).coalesce();
    };
    auto emb_sparse = [&] {
      emb::embedding_sparse_backward_coalesced(grad, ids, rows, std::nullopt, false);
    };
    compare(report, cfg, "sparse_backward_coalesced" + sfx, double(n), emb_sparse, "libtorch",
            torch_sparse);
    if (scale) scaling(report, cfg, "sparse_backward_coalesced" + sfx, double(n), emb_sparse);
    compare(
        report, cfg, "sparse_backward_then_coalesce" + sfx, double(n),
        [&] { emb::embedding_sparse_backward(grad, ids, rows, std::nullopt, false).coalesce(); },
        "libtorch", torch_sparse);
    const emb::Tensor bag_grad = random_floats({bags, dim}, 5);
    const torch::Tensor t_bag_grad = as_torch(bag_grad);
    const auto fwd = at::_embedding_bag(t_table, t_ids, t_offsets, false, 0);
    auto torch_bag_backward = [&] {
      return at::_embedding_bag_backward(t_bag_grad, t_ids, t_offsets, std::get<1>(fwd),
                                         std::get<2>(fwd), std::get<3>(fwd), rows, false, 0, false,
                                         {}, -1);
    };
    {  // libtorch sums a row's duplicates in its own order: equal within rounding
      const emb::Tensor g =
          emb::embedding_bag_dense_backward(bag_grad, ids, offsets, {}, rows, sum);
      const torch::Tensor tg = torch_bag_backward();
      const bool bitwise = same_bits(g, tg);
      const double diff = bitwise ? 0.0 : max_abs_diff(g, tg);
      check(diff < 1e-4, "bag_dense_backward" + sfx);
      std::printf("# bag_dense_backward%s: %s\n", sfx.c_str(),
                  bitwise ? "bitwise equal to libtorch"
                          : ("largest absolute difference " + std::to_string(diff)).c_str());
    }
    const auto emb_bag_backward =
        steady([&] { emb::embedding_bag_dense_backward(bag_grad, ids, offsets, {}, rows, sum); });
    compare(report, cfg, "bag_dense_backward" + sfx, double(n) * kSteadyCalls, emb_bag_backward,
            "libtorch", steady(torch_bag_backward), kSteadyReps);
    if (scale) {
      scaling(report, cfg, "bag_dense_backward" + sfx, double(n) * kSteadyCalls, emb_bag_backward,
              kSteadyReps);
    }
    auto torch_psw_grad = [&] {
      return at::_embedding_bag_per_sample_weights_backward(t_bag_grad, t_table, t_ids, t_offsets,
                                                            std::get<1>(fwd), 0, -1);
    };
    const double psw_diff = max_abs_diff(
        emb::embedding_bag_per_sample_weights_backward(bag_grad, table, ids, offsets, sum),
        torch_psw_grad());
    check(psw_diff < 1e-4, "psw_grad" + sfx);
    std::printf("# psw_grad%s: largest absolute difference to libtorch %.3g\n", sfx.c_str(),
                psw_diff);
    auto emb_psw_grad = [&] {
      emb::embedding_bag_per_sample_weights_backward(bag_grad, table, ids, offsets, sum);
    };
    compare(report, cfg, "psw_grad" + sfx, double(n), emb_psw_grad, "libtorch", torch_psw_grad);
    if (scale) scaling(report, cfg, "psw_grad" + sfx, double(n), emb_psw_grad);

    // Renorm with a max_norm no row reaches: the norms are computed, nothing is written.
    auto emb_renorm = [&] { emb::embedding_renorm_(table, ids, 1e30, 2.0); };
    compare(report, cfg, "renorm" + sfx, double(n), emb_renorm, "libtorch",
            [&] { at::embedding_renorm_(t_table, t_ids, 1e30, 2.0); });
    if (scale) scaling(report, cfg, "renorm" + sfx, double(n), emb_renorm);
  }
}

// The machine's memory bandwidth: a sequential copy of 256 MiB (ns per MiB copied), emb's
// Tensor::copy_ against the probe's loop, at 1 and 2 threads. The bandwidth-bound cases (the
// gather's writes, the dense gradient's zeroing) cannot scale with threads past what this does.
// The probe_* lines time the probe against itself, 2 threads against 1 (anchor one_thread).
void copy_cases(Report& report, const Config& cfg) {
  if (!selected(cfg, "copy_t1") && !selected(cfg, "copy_t2") && !selected(cfg, "probe_zero_t2")) {
    return;
  }
  const std::int64_t n = std::int64_t{64} << 20;  // floats
  const emb::Tensor src = random_floats({n}, 5);
  const emb::Tensor dst = written_zeros({n});
  const emb::Tensor probe_dst = written_zeros({n});
  const double mib = static_cast<double>(n) * 4 / (1 << 20);
  for (int threads : {1, 2}) {
    set_threads(threads);
    dst.copy_(src);
    check(dst.equal(src), "copy");
    compare(
        report, cfg, "copy_t" + std::to_string(threads), mib, [&] { dst.copy_(src); }, "probe",
        [&] { probe_copy(src.data<float>(), n, probe_dst.data<float>()); });
  }
  if (cfg.quick) return;
  scaling(report, cfg, "copy_t2", mib, [&] { dst.copy_(src); });
  scaling(report, cfg, "probe_copy_t2", mib,
          [&] { probe_copy(src.data<float>(), n, probe_dst.data<float>()); });
  // Zeroing, as a dense gradient's reused memory is zeroed: memset over the threads in 2 MiB
  // pieces (plain stores; ns per MiB zeroed).
  scaling(report, cfg, "probe_zero_t2", mib, [&] {
    auto* bytes = reinterpret_cast<unsigned char*>(probe_dst.data<float>());
    const std::int64_t pieces = n * 4 >> 21;
#pragma omp parallel for schedule(static)
    for (std::int64_t p = 0; p < pieces; ++p)
      std::memset(bytes + (p << 21), 0, std::size_t{1} << 21);
  });
}

// One call on a hot table: 1 id, one bag of 20, one bag of 256 (ns per call).
void single_calls(Report& report, const Config& cfg) {
  set_threads(1);
  const std::int64_t rows = 65536, dim = 64;
  const emb::Tensor table = random_floats({rows, dim}, 7);
  const torch::Tensor t_table = as_torch(table);
  const int calls = cfg.quick ? 200 : 2000;
  const auto sum = emb::EmbeddingBagFuncOptions().mode(emb::EmbeddingBagMode::kSum);
  for (std::int64_t k : {1, 20, 256}) {
    const emb::Tensor ids = uniform_ids(k, rows, 8 + static_cast<std::uint64_t>(k));
    const emb::Tensor offsets = bag_offsets(k, k);
    const torch::Tensor t_ids = as_torch(ids), t_offsets = as_torch(offsets);
    if (k == 1) {
      check(same_bits(emb::embedding(ids, table), torch::embedding(t_table, t_ids)), "call_1");
      compare(
          report, cfg, "call_embedding_1id", double(calls),
          [&] {
            for (int c = 0; c < calls; ++c) emb::embedding(ids, table);
          },
          "libtorch",
          [&] {
            for (int c = 0; c < calls; ++c) torch::embedding(t_table, t_ids);
          });
      // A serving loop's call: into the same output each time (libtorch's call as above).
      const emb::Tensor out = emb::Tensor::empty({1, dim}, emb::DType::kFloat32);
      emb::embedding_out(ids, table, out);
      check(same_bits(out, torch::embedding(t_table, t_ids)), "call_out_1");
      compare(
          report, cfg, "call_embedding_out_1id", double(calls),
          [&] {
            for (int c = 0; c < calls; ++c) emb::embedding_out(ids, table, out);
          },
          "libtorch",
          [&] {
            for (int c = 0; c < calls; ++c) torch::embedding(t_table, t_ids);
          });
      continue;
    }
    check(same_bits(emb::embedding_bag(ids, table, offsets, sum),
                    std::get<0>(at::embedding_bag(t_table, t_ids, t_offsets, false, 0))),
          "call_bag");
    // Per call: divide the loop's time by the calls (compare divides by `units`).
    compare(
        report, cfg, "call_bag_sum_" + std::to_string(k) + "ids", double(calls),
        [&] {
          for (int c = 0; c < calls; ++c) emb::embedding_bag(ids, table, offsets, sum);
        },
        "libtorch",
        [&] {
          for (int c = 0; c < calls; ++c) at::embedding_bag(t_table, t_ids, t_offsets, false, 0);
        });
    const emb::Tensor out = emb::Tensor::empty({1, dim}, emb::DType::kFloat32);
    emb::embedding_bag_out(ids, table, offsets, out, sum);
    check(same_bits(out, std::get<0>(at::embedding_bag(t_table, t_ids, t_offsets, false, 0))),
          "call_bag_out");
    compare(
        report, cfg, "call_bag_sum_out_" + std::to_string(k) + "ids", double(calls),
        [&] {
          for (int c = 0; c < calls; ++c) emb::embedding_bag_out(ids, table, offsets, out, sum);
        },
        "libtorch",
        [&] {
          for (int c = 0; c < calls; ++c) at::embedding_bag(t_table, t_ids, t_offsets, false, 0);
        });
  }
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      cfg.quick = true;
    } else if (a == "--out" && i + 1 < argc) {
      cfg.out_dir = argv[++i];
    } else if (a == "--only" && i + 1 < argc) {
      const std::string list = argv[++i];
      for (std::size_t b = 0, e; b <= list.size(); b = e + 1) {
        e = std::min(list.find(',', b), list.size());
        if (e > b) cfg.only.push_back(list.substr(b, e - b));
      }
    } else {
      std::fprintf(stderr, "usage: compare_bench [--quick] [--out DIR] [--only NAME[,NAME...]]\n");
      return 2;
    }
  }
  if (cfg.quick) {
    cfg.reps = 3;
    cfg.n_ids = 250000;
  }
  Report report(cfg.out_dir + "/compare.tsv", cfg.out_dir + "/compare_spread.tsv");
  if (!report.ok()) {
    std::fprintf(stderr, "compare_bench: cannot write into %s\n", cfg.out_dir.c_str());
    return 1;
  }
  std::printf(
      "# emb %s, SIMD target %s, libtorch %s; %lld ids per call, bags of %lld, median of "
      "%d interleaved repetitions (hot tables: twice as many), ns per id (single calls: ns per "
      "call)\n",
      emb::version(), emb::simd_target().c_str(), TORCH_VERSION, static_cast<long long>(cfg.n_ids),
      static_cast<long long>(cfg.bag), cfg.reps);
  constexpr std::int64_t kGiB = std::int64_t{1} << 30;
  constexpr std::int64_t kHot = std::int64_t{16} << 20;
  // Cold: a 1 GiB table (every lookup a cache and TLB miss); hot: 16 MiB (in cache after the
  // first pass). The gather and the bag sum: D 32..256, uniform and Zipf(1.05) ids; every other
  // operation: D 64 and 128, cold, uniform. Quick: D 64 only, fewer ids and repetitions.
  for (std::int64_t dim : {64, 128, 32, 256}) {
    if (cfg.quick && dim != 64) continue;
    const bool full = dim == 64 || dim == 128;
    table_cases(report, cfg, "cold", kGiB / (dim * 4), dim, Dist::kUniform, full);
    table_cases(report, cfg, "cold", kGiB / (dim * 4), dim, Dist::kZipf, false);
    table_cases(report, cfg, "hot", kHot / (dim * 4), dim, Dist::kUniform, false);
    table_cases(report, cfg, "hot", kHot / (dim * 4), dim, Dist::kZipf, false);
  }
  copy_cases(report, cfg);
  single_calls(report, cfg);
  return 0;
}
