// Table files and quantized tables, timed:
//   table_io_bench open DIR        mmap open + first lookup of a 1 GiB safetensors table (and a
//                                  16 GiB sparse one), page cache dropped for the file first,
//                                  against one cold page read with plain syscalls; a full
//                                  copy-load of the 1 GiB table for contrast
//   table_io_bench word2vec DIR    loading a generated 1,000,000 x 100 table in word2vec text
//                                  and binary
//   table_io_bench quant ROWS DIM  sum and max bags of 20 random rows over a ROWS x DIM table:
//                                  float32, int8 and int4 rows (and the int8/int4 scalar ref
//                                  twins), ns per looked-up row
// Each case checks its result before it is timed.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "emb/emb.h"
#include "kernels/ref/quant_ref.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::int64_t file_size(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  std::fseek(f, 0, SEEK_END);
  const long n = std::ftell(f);
  std::fclose(f);
  return n;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The whole file mapped read-only (open, fstat, mmap, close); aborts when it cannot be.
struct FileMap {
  void* data;
  std::size_t size;
};

FileMap map_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  struct stat st {};
  ::fstat(fd, &st);
  const auto size = static_cast<std::size_t>(st.st_size);
  void* m = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) std::abort();
  return {m, size};
}

// How many of the file's pages are in the page cache (mincore over a fresh mapping).
std::int64_t resident_pages(const std::string& path) {
  const auto [m, size] = map_file(path);
  std::vector<unsigned char> in((size + 4095) / 4096);
  ::mincore(m, size, in.data());
  ::munmap(m, size);
  return std::count_if(in.begin(), in.end(), [](unsigned char c) { return (c & 1) != 0; });
}

// Drops the file's pages from the page cache (they are clean: written and fsynced) and checks
// that none is left. It first waits 20 ms: a fault returns once its own page is read, while the
// rest of the read-around window it started is still being read; those pages would not be
// dropped, and their reads would delay the next timed step.
void drop_cache(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) std::abort();
  ::fdatasync(fd);
  ::usleep(20000);
  for (int tries = 0; tries < 1000; ++tries) {
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    if (resident_pages(path) == 0) break;
    ::usleep(1000);
  }
  ::close(fd);
}

struct Stats {
  double median, min, max;
};

Stats stats(const std::vector<double>& v) {
  return {median(v), *std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end())};
}

// The cold reads of one table, kRuns rounds, the page cache dropped for the file before each
// timed step: emb's mmap open + the first lookup of row `row` (and the open alone; and the
// same with LoadTableOptions::random_access), and two anchors with plain syscalls on the same
// file: open + pread of the row's 4 KiB page + close (the device's latency for one page), and
// open + mmap + a touch of that page + munmap (the kernel's page fault on a cold mapping,
// read-around included).
void time_open(const std::string& path, const char* what, std::int64_t row, std::int64_t dim,
               std::uint64_t data_start, float want) {
  constexpr int kRuns = 11;
  const emb::Tensor id = emb::Tensor::from_vector<std::int64_t>({row}, {1});
  const std::uint64_t row_offset = data_start + static_cast<std::uint64_t>(row * dim) * 4;
  const std::uint64_t page = row_offset & ~std::uint64_t{4095};
  emb::io::LoadTableOptions mapped;
  mapped.access = emb::io::Access::kMap;
  emb::io::LoadTableOptions random = mapped;
  random.random_access = true;
  std::vector<double> total, open, total_random, pread_ms, fault_ms;
  std::int64_t pages_pread = 0, pages_fault = 0;
  for (int rep = 0; rep < kRuns; ++rep) {
    drop_cache(path);
    {
      const auto t0 = Clock::now();
      const emb::io::Table t = emb::io::load_table(path, mapped);
      open.push_back(ms_since(t0));
      const emb::Tensor out = emb::embedding(id, t.weight);
      total.push_back(ms_since(t0));
      if (out.at<float>(0, 5) != want) std::abort();
    }
    drop_cache(path);
    {
      const auto t0 = Clock::now();
      const emb::io::Table t = emb::io::load_table(path, random);
      const emb::Tensor out = emb::embedding(id, t.weight);
      total_random.push_back(ms_since(t0));
      if (out.at<float>(0, 5) != want) std::abort();
    }
    drop_cache(path);
    {
      char buf[4096];
      const auto t0 = Clock::now();
      const int fd = ::open(path.c_str(), O_RDONLY);
      const ssize_t got = ::pread(fd, buf, sizeof buf, static_cast<off_t>(page));
      ::close(fd);
      pread_ms.push_back(ms_since(t0));
      if (rep == 0) pages_pread = (::usleep(20000), resident_pages(path));  // reads done
      float x;
      std::memcpy(&x, buf + (row_offset - page) + 5 * 4, 4);
      if (got != static_cast<ssize_t>(sizeof buf) || x != want) std::abort();
    }
    drop_cache(path);
    {
      const auto t0 = Clock::now();
      const auto [m, size] = map_file(path);
      float x;
      std::memcpy(&x, static_cast<const char*>(m) + row_offset + 5 * 4, 4);
      ::munmap(m, size);
      fault_ms.push_back(ms_since(t0));
      if (rep == 0) pages_fault = (::usleep(20000), resident_pages(path));  // reads done
      if (x != want) std::abort();
    }
  }
  const Stats a = stats(total), o = stats(open), r = stats(total_random), p = stats(pread_ms),
              f = stats(fault_ms);
  std::printf("%s, cold page cache, %d runs, ms median (min-max):\n", what, kRuns);
  std::printf("  emb mmap open + first lookup   %7.3f (%.3f-%.3f)\n", a.median, a.min, a.max);
  std::printf("  emb mmap open alone            %7.3f (%.3f-%.3f)\n", o.median, o.min, o.max);
  std::printf("  the same, random_access        %7.3f (%.3f-%.3f)\n", r.median, r.min, r.max);
  std::printf("  anchor: open+pread 4 KiB+close %7.3f (%.3f-%.3f)\n", p.median, p.min, p.max);
  std::printf("  anchor: open+mmap+touch+munmap %7.3f (%.3f-%.3f)\n", f.median, f.min, f.max);
  std::printf("  pages in the page cache after the pread: %lld, after the touch: %lld\n",
              static_cast<long long>(pages_pread), static_cast<long long>(pages_fault));
}

// The offset of a safetensors file's data: 8 + its header length.
std::uint64_t safetensors_data_start(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  unsigned char b[8];
  if (f == nullptr || std::fread(b, 1, 8, f) != 8) std::abort();
  std::fclose(f);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | b[i];
  return 8 + n;
}

// The read_ahead_kb of the block device holding dir (the kernel's read-around window for a
// fault on a cold file mapping), when sysfs tells it.
void print_read_ahead(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return;
  const std::string dev =
      "/sys/dev/block/" + std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
  for (const char* q : {"/queue/read_ahead_kb", "/../queue/read_ahead_kb"}) {
    if (FILE* f = std::fopen((dev + q).c_str(), "r")) {
      int kb = 0;
      if (std::fscanf(f, "%d", &kb) == 1)
        std::printf("read_ahead_kb of %s's device: %d\n", dir.c_str(), kb);
      std::fclose(f);
      return;
    }
  }
}

void open_case(const std::string& dir) {
  print_read_ahead(dir);
  const std::int64_t rows = 262144, dim = 1024;  // 1 GiB of float32
  const std::string path = dir + "/table_1g.safetensors";
  {
    emb::Tensor w = emb::Tensor::empty({rows, dim}, emb::DType::kFloat32);
    float* x = w.data<float>();
    for (std::int64_t i = 0; i < w.numel(); ++i) x[i] = static_cast<float>(i % 1000) * 0.001f;
    emb::io::write_safetensors(path, {{"weight", w}});
  }
  const std::int64_t row = rows - 7;
  const float want = static_cast<float>((row * dim + 5) % 1000) * 0.001f;
  time_open(path, "1 GiB safetensors (262,144 x 1,024 float32), row 262,137", row, dim,
            safetensors_data_start(path), want);
  // Mid-table, the kernel's read-around window is not cut by the end of the file.
  const std::int64_t mid = rows / 2;
  time_open(path, "1 GiB safetensors, row 131,072 (mid-table)", mid, dim,
            safetensors_data_start(path), static_cast<float>((mid * dim + 5) % 1000) * 0.001f);
  {
    const emb::Tensor id = emb::Tensor::from_vector<std::int64_t>({row}, {1});
    drop_cache(path);
    const auto t0 = Clock::now();
    const emb::io::Table t = emb::io::load_table(path);
    const emb::Tensor out = emb::embedding(id, t.weight);
    if (out.at<float>(0, 5) != want) std::abort();
    std::printf("copy load + first lookup, 1 GiB safetensors, cold: %.1f ms\n", ms_since(t0));
  }
  // What random_access costs a scan: a cold copy of the whole mapped table, once each way.
  for (const bool random : {false, true}) {
    emb::io::LoadTableOptions o;
    o.access = emb::io::Access::kMap;
    o.random_access = random;
    drop_cache(path);
    const auto t0 = Clock::now();
    const emb::io::Table t = emb::io::load_table(path, o);
    const emb::Tensor copy = t.weight.clone();
    const double ms = ms_since(t0);
    if (copy.at<float>(row, 5) != want) std::abort();
    std::printf("mmap open + clone() of the whole 1 GiB table, cold%s: %.0f ms\n",
                random ? ", random_access" : "", ms);
  }
  ::unlink(path.c_str());
  // 16 GiB sparse: a header and a size; the pages read are holes.
  const std::int64_t big_rows = 4194304;
  const std::string big = dir + "/table_16g.safetensors";
  std::string header = "{\"weight\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string(big_rows) +
                       "," + std::to_string(dim) + "],\"data_offsets\":[0," +
                       std::to_string(big_rows * dim * 4) + "]}}";
  header.append((8 - header.size() % 8) % 8, ' ');
  {
    FILE* f = std::fopen(big.c_str(), "wb");
    const std::uint64_t n = header.size();
    std::fwrite(&n, 8, 1, f);
    std::fwrite(header.data(), 1, header.size(), f);
    std::fclose(f);
    if (::truncate(big.c_str(), static_cast<off_t>(8 + header.size() + big_rows * dim * 4)) != 0)
      std::abort();
  }
  time_open(big, "16 GiB sparse safetensors (4,194,304 x 1,024 float32), row 4,194,303",
            big_rows - 1, dim, 8 + header.size(), 0.0f);
  ::unlink(big.c_str());
}

void word2vec_case(const std::string& dir) {
  const std::int64_t count = 1000000, dim = 100;
  emb::io::WordVectors wv;
  wv.vectors = emb::Tensor::empty({count, dim}, emb::DType::kFloat32);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  float* x = wv.vectors.data<float>();
  for (std::int64_t i = 0; i < count * dim; ++i) x[i] = normal(rng);
  wv.words.reserve(count);
  for (std::int64_t i = 0; i < count; ++i) wv.words.push_back("w" + std::to_string(i));
  const std::string text = dir + "/w2v_1m_100.txt";
  const std::string bin = dir + "/w2v_1m_100.bin";
  emb::io::write_text_vectors(text, wv);
  emb::io::write_word2vec_binary(bin, wv);
  for (const auto& [path, is_bin] : {std::pair{text, false}, std::pair{bin, true}}) {
    const auto size = static_cast<double>(file_size(path));
    std::vector<double> times;
    for (int rep = 0; rep < 3; ++rep) {
      const auto t0 = Clock::now();
      const emb::io::WordVectors got =
          is_bin ? emb::io::read_word2vec_binary(path) : emb::io::read_text_vectors(path);
      times.push_back(ms_since(t0));
      if (!got.vectors.equal(wv.vectors) || got.words.back() != wv.words.back()) std::abort();
    }
    const double ms = median(times);
    std::printf("word2vec %s 1,000,000 x 100 (%.0f MB), warm cache: median %.0f ms = %.0f MB/s\n",
                is_bin ? "binary" : "text", size / 1e6, ms, size / 1e6 / (ms / 1e3));
  }
  ::unlink(text.c_str());
  ::unlink(bin.c_str());
}

void quant_case(std::int64_t rows, std::int64_t dim) {
  emb::Tensor w = emb::Tensor::empty({rows, dim}, emb::DType::kFloat32);
  std::mt19937 rng(2);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  float* x = w.data<float>();
  for (std::int64_t i = 0; i < rows * dim; ++i) x[i] = normal(rng);
  const emb::QuantizedTable q8 = emb::quantize_rowwise(w, emb::QuantType::kInt8);
  const emb::QuantizedTable q4 = emb::quantize_rowwise(w, emb::QuantType::kInt4);
  const std::int64_t bags = 20000, per_bag = 20;
  std::uniform_int_distribution<std::int64_t> pick(0, rows - 1);
  std::vector<std::int64_t> ids(bags * per_bag);
  for (auto& v : ids) v = pick(rng);
  const emb::Tensor input = emb::Tensor::from_vector<std::int64_t>(ids, {bags, per_bag});
  emb::EmbeddingBagFuncOptions o;
  o.mode(emb::EmbeddingBagMode::kSum);
  // Correct before timed: the quantized bags equal pooling the dequantized tables.
  if (!emb::quantized_embedding_bag(input, q8, {}, o)
           .equal(emb::embedding_bag(input, emb::dequantize(q8), {}, o)) ||
      !emb::quantized_embedding_bag(input, q4, {}, o)
           .equal(emb::embedding_bag(input, emb::dequantize(q4), {}, o))) {
    std::abort();
  }
  // The kernels interleaved, 9 rounds, so that the machine's load hits them alike: the fast
  // kernels (bag sum and bag max) and, for contrast, the scalar ref twins they replace.
  auto ns_per_row = [&](auto&& run) {
    const auto t0 = Clock::now();
    run();
    return ms_since(t0) * 1e6 / static_cast<double>(bags * per_bag);
  };
  emb::EmbeddingBagFuncOptions om;
  om.mode(emb::EmbeddingBagMode::kMax);
  std::vector<std::int64_t> bounds(bags + 1);
  for (std::int64_t b = 0; b <= bags; ++b) bounds[b] = b * per_bag;
  std::vector<float> ref_out(static_cast<std::size_t>(bags * dim));
  auto ref_sum = [&](const emb::QuantizedTable& q, auto bits) {
    emb::detail::ref::quant_bag_sum<decltype(bits)::value>(
        static_cast<const std::uint8_t*>(q.data.raw_data()), dim, ids.data(), bounds.data(), bags,
        -1, nullptr, ref_out.data());
  };
  std::vector<double> t32, t8, t4, m32, m8, m4, r8, r4;
  for (int rep = 0; rep < 9; ++rep) {
    t32.push_back(ns_per_row([&] { (void)emb::embedding_bag(input, w, {}, o); }));
    t8.push_back(ns_per_row([&] { (void)emb::quantized_embedding_bag(input, q8, {}, o); }));
    t4.push_back(ns_per_row([&] { (void)emb::quantized_embedding_bag(input, q4, {}, o); }));
    m32.push_back(ns_per_row([&] { (void)emb::embedding_bag(input, w, {}, om); }));
    m8.push_back(ns_per_row([&] { (void)emb::quantized_embedding_bag(input, q8, {}, om); }));
    m4.push_back(ns_per_row([&] { (void)emb::quantized_embedding_bag(input, q4, {}, om); }));
    r8.push_back(ns_per_row([&] { ref_sum(q8, std::integral_constant<int, 8>{}); }));
    r4.push_back(ns_per_row([&] { ref_sum(q4, std::integral_constant<int, 4>{}); }));
  }
  std::printf(
      "bags of %lld random rows over %lld x %lld (float32 %.0f MB, int8 %.0f MB, int4 %.0f MB), "
      "%d threads, SIMD %s; ns per looked-up row, medians of 9:\n",
      static_cast<long long>(per_bag), static_cast<long long>(rows), static_cast<long long>(dim),
      static_cast<double>(w.nbytes()) / 1e6, static_cast<double>(q8.data.nbytes()) / 1e6,
      static_cast<double>(q4.data.nbytes()) / 1e6, emb::get_num_threads(),
      emb::simd_target().c_str());
  std::printf("  sum   float32 %.1f   int8 %.1f   int4 %.1f\n", median(t32), median(t8),
              median(t4));
  std::printf("  max   float32 %.1f   int8 %.1f   int4 %.1f\n", median(m32), median(m8),
              median(m4));
  std::printf("  sum, scalar ref twins (1 thread): int8 %.1f   int4 %.1f\n", median(r8),
              median(r4));
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "open" && argc > 2) {
    open_case(argv[2]);
  } else if (mode == "word2vec" && argc > 2) {
    word2vec_case(argv[2]);
  } else if (mode == "quant" && argc > 3) {
    quant_case(std::atoll(argv[2]), std::atoll(argv[3]));
  } else {
    std::fprintf(stderr, "usage: table_io_bench open DIR | word2vec DIR | quant ROWS DIM\n");
    return 2;
  }
  return 0;
}
