#include "table_tools.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "emb/embedding.h"
#include "emb/error.h"
#include "emb/io/safetensors.h"
#include "emb/io/table.h"
#include "emb/neighbors.h"
#include "emb/quant.h"
#include "emb/runtime.h"
#include "progress.h"

namespace emb_cli {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Rows handled per step of a long operation (progress is redrawn between steps).
constexpr std::int64_t kChunkRows = 1 << 16;

// One stage of a long operation on stderr: a bar redrawn a few times a second on a terminal,
// one line when it ends otherwise, nothing when quiet.
class Stage {
 public:
  Stage(Progress::Style style, std::string what, std::int64_t total)
      : style_(style), what_(std::move(what)), total_(total), start_(Clock::now()) {
    if (style_ == Progress::Style::kBar) draw(0);
  }
  void update(std::int64_t done) {
    if (style_ != Progress::Style::kBar) return;
    const auto now = Clock::now();
    if (now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    draw(done);
  }
  double finish() {
    const double s = seconds_since(start_);
    if (style_ == Progress::Style::kBar) {
      std::fprintf(stderr, "\r%s: %.3f s\033[K\n", what_.c_str(), s);
    } else if (style_ == Progress::Style::kLines) {
      std::fprintf(stderr, "%s: %.3f s\n", what_.c_str(), s);
    }
    return s;
  }

 private:
  void draw(std::int64_t done) {
    if (total_ <= 0) {
      std::fprintf(stderr, "\r%s ...\033[K", what_.c_str());
    } else {
      constexpr int kWidth = 30;
      const double f = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
      const int fill = static_cast<int>(f * kWidth);
      std::fprintf(stderr, "\r%s [%s%s] %3d%%\033[K", what_.c_str(), std::string(fill, '#').c_str(),
                   std::string(kWidth - fill, ' ').c_str(), static_cast<int>(f * 100));
    }
    std::fflush(stderr);
  }

  Progress::Style style_;
  std::string what_;
  std::int64_t total_;
  Clock::time_point start_;
  Clock::time_point last_{};
};

// A table as the tools see it: the file's table, and its quantized form when the file marks it.
struct Loaded {
  emb::io::Table table;
  std::optional<emb::QuantizedTable> quant;
  std::string path;

  std::int64_t rows() const { return table.weight.size(0); }
  std::int64_t dim() const { return quant ? quant->dim : table.weight.size(1); }
  bool floating() const { return quant || emb::is_floating(table.weight.dtype()); }
  std::string dtype_text() const {
    return quant ? fmt::format("{} (row-wise quantized, {} bytes a row)",
                               emb::quant_type_name(quant->type), table.weight.size(1))
                 : std::string(emb::dtype_name(table.weight.dtype()));
  }
};

// random_access: the caller reads a few rows, not all of them (see LoadTableOptions).
Loaded load(const std::string& path, const TableToolOptions& o, Progress::Style style,
            bool random_access = false) {
  Stage stage(style, "reading " + path, 0);
  Loaded l;
  l.path = path;
  emb::io::LoadTableOptions lo;
  lo.access = emb::io::Access::kMap;
  lo.random_access = random_access;
  lo.tensor = o.tensor;
  l.table = emb::io::load_table(path, lo);
  if (l.table.format == emb::io::Format::kSafetensors) {
    l.quant = emb::quantized_from_metadata(l.table.weight, l.table.name, l.table.metadata, path);
  }
  stage.finish();
  return l;
}

// Rows [begin, end) of t (a view, no copy).
emb::Tensor row_view(const emb::Tensor& t, std::int64_t begin, std::int64_t end) {
  const std::size_t row_bytes =
      t.nbytes() / static_cast<std::size_t>(std::max<std::int64_t>(1, t.size(0)));
  auto* base = static_cast<std::byte*>(t.raw_data()) + static_cast<std::size_t>(begin) * row_bytes;
  return emb::Tensor::view(base, {end - begin, t.size(1)}, t.dtype());
}

// Rows [begin, end) as float32 (dequantized or converted; a view when already float32).
emb::Tensor float_rows(const Loaded& l, std::int64_t begin, std::int64_t end) {
  const emb::Tensor rows = row_view(l.table.weight, begin, end);
  if (l.quant) {
    emb::QuantizedTable q = *l.quant;
    q.data = rows;
    return emb::dequantize(q);
  }
  return rows.dtype() == emb::DType::kFloat32 ? rows : rows.to(emb::DType::kFloat32);
}

// The whole table as float32: the table itself when it already is, else converted by chunks.
emb::Tensor float_table(const Loaded& l, Progress::Style style) {
  if (!l.quant && l.table.weight.dtype() == emb::DType::kFloat32) return l.table.weight;
  if (!l.floating()) {
    throw emb::ValueError(fmt::format("{}: the table is {}, not a floating or quantized table",
                                      l.path, l.dtype_text()));
  }
  const std::int64_t rows = l.rows(), dim = l.dim();
  emb::Tensor out = emb::Tensor::empty({rows, dim}, emb::DType::kFloat32);
  Stage stage(style, l.quant ? "dequantizing" : "converting to float32", rows);
  for (std::int64_t b = 0; b < rows; b += kChunkRows) {
    const std::int64_t e = std::min(rows, b + kChunkRows);
    const emb::Tensor f = float_rows(l, b, e);
    std::memcpy(out.data<float>() + b * dim, f.data<float>(), f.nbytes());
    stage.update(e);
  }
  stage.finish();
  return out;
}

std::string format_float(float v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

std::string format_double(double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

// The rows the queries name: words of the vocabulary, or row ids (options.ids, or a table
// without a vocabulary). Every query is checked before anything is printed.
std::vector<std::int64_t> resolve(const Loaded& l, const std::vector<std::string>& queries,
                                  const TableToolOptions& o, const char* op) {
  const bool by_id = o.ids || l.table.vocab.empty();
  // A few queries scan the vocabulary; more build a hash index first.
  const bool scan = queries.size() <= 4;
  std::unordered_map<std::string_view, std::int64_t> index;
  if (!by_id && !scan) {
    index.reserve(l.table.vocab.size());
    for (std::size_t i = 0; i < l.table.vocab.size(); ++i) {
      index.emplace(l.table.vocab[i], static_cast<std::int64_t>(i));
    }
  }
  std::vector<std::int64_t> rows;
  for (std::size_t i = 0; i < queries.size(); ++i) {
    const std::string& q = queries[i];
    if (by_id) {
      std::int64_t id = -1;
      const auto r = std::from_chars(q.data(), q.data() + q.size(), id);
      if (r.ec != std::errc() || r.ptr != q.data() + q.size() || id < 0 || id >= l.rows()) {
        throw emb::ValueError(fmt::format(
            "{}: query {} \"{}\" is not a row id of {} (0 to {}){}", op, i + 1, q, l.path,
            l.rows() - 1, l.table.vocab.empty() ? " (the file has no vocabulary)" : ""));
      }
      rows.push_back(id);
    } else {
      std::int64_t found = -1;
      if (scan) {
        const auto it = std::find(l.table.vocab.begin(), l.table.vocab.end(), q);
        if (it != l.table.vocab.end()) found = it - l.table.vocab.begin();
      } else if (const auto it = index.find(q); it != index.end()) {
        found = it->second;
      }
      if (found < 0) {
        throw emb::ValueError(fmt::format(
            "{}: query {} \"{}\" is not in the vocabulary of {} ({} words; --ids takes row ids)",
            op, i + 1, q, l.path, l.table.vocab.size()));
      }
      rows.push_back(found);
    }
  }
  return rows;
}

std::string row_name(const Loaded& l, std::int64_t r) {
  return l.table.vocab.empty() ? std::to_string(r) : l.table.vocab[static_cast<std::size_t>(r)];
}

std::optional<emb::DType> parse_float_dtype(const std::string& s) {
  if (s == "f32" || s == "float32") return emb::DType::kFloat32;
  if (s == "f64" || s == "float64") return emb::DType::kFloat64;
  if (s == "f16" || s == "float16") return emb::DType::kFloat16;
  if (s == "bf16" || s == "bfloat16") return emb::DType::kBFloat16;
  return std::nullopt;
}

}  // namespace

int run_info(const std::string& path, const TableToolOptions& o) {
  const Progress::Style style = Progress::detect(o.quiet);
  // Printed once everything has been read: a bad file prints nothing on stdout.
  std::string text;
  const auto say = [&text](const char* format, auto... args) {
    const int n = std::snprintf(nullptr, 0, format, args...);
    if (n <= 0) return;
    const std::size_t at = text.size();
    text.resize(at + static_cast<std::size_t>(n) + 1);
    std::snprintf(text.data() + at, static_cast<std::size_t>(n) + 1, format, args...);
    text.resize(at + static_cast<std::size_t>(n));
  };
  const emb::io::Format format = emb::io::detect_format(path);
  say("file: %s\n", path.c_str());
  say("format: %s\n", std::string(emb::io::format_name(format)).c_str());
  say("size: %llu bytes\n", static_cast<unsigned long long>(std::filesystem::file_size(path)));
  std::optional<Loaded> loaded;
  std::string no_table;
  try {
    loaded = load(path, o, style);
  } catch (const emb::ValueError& e) {
    if (format != emb::io::Format::kSafetensors) throw;
    no_table = e.what();  // several tensors, none of them the table: list them anyway
  }
  if (format == emb::io::Format::kSafetensors) {
    const emb::io::TensorFile f = emb::io::read_safetensors(path, emb::io::Access::kMap);
    for (const auto& [name, t] : f.tensors) {
      say("tensor: %s %s %s %zu bytes\n", name.c_str(), emb::io::safetensors_dtype_name(t.dtype()),
          emb::shape_to_string(t.shape()).c_str(), t.nbytes());
    }
    for (const auto& [key, value] : f.metadata) {
      if (key == "emb.vocab") {
        say("metadata: %s (%zu bytes: the vocabulary)\n", key.c_str(), value.size());
      } else {
        say("metadata: %s = %s\n", key.c_str(),
            value.size() <= 200 ? value.c_str() : (value.substr(0, 200) + "...").c_str());
      }
    }
  } else if (loaded) {
    say("tensor: %s %s %zu bytes\n",
        std::string(emb::dtype_name(loaded->table.weight.dtype())).c_str(),
        emb::shape_to_string(loaded->table.weight.shape()).c_str(), loaded->table.weight.nbytes());
  }
  if (!loaded) {
    say("table: none (%s; choose one with --tensor)\n", no_table.c_str());
    std::fputs(text.c_str(), stdout);
    return 0;
  }
  const Loaded& l = *loaded;
  say("table: %s%lld rows x %lld, %s\n",
      l.table.name.empty() ? "" : ("\"" + l.table.name + "\" ").c_str(),
      static_cast<long long>(l.rows()), static_cast<long long>(l.dim()), l.dtype_text().c_str());
  say("vocabulary: %zu words\n", l.table.vocab.size());
  if (!l.floating()) {
    say("%s", "norms: none (not a floating table)\n");
    std::fputs(text.c_str(), stdout);
    return 0;
  }
  // L2 norms of the rows (float32; quantized rows dequantized).
  const std::int64_t rows = l.rows();
  Stage stage(style, "norms", rows);
  double sum = 0, lo = std::numeric_limits<double>::infinity(), hi = 0;
  std::int64_t zero = 0, nonfinite = 0;
  for (std::int64_t b = 0; b < rows; b += kChunkRows) {
    const std::int64_t e = std::min(rows, b + kChunkRows);
    const emb::Tensor inv = emb::row_inverse_norms(float_rows(l, b, e));
    const float* p = inv.data<float>();
    for (std::int64_t i = 0; i < e - b; ++i) {
      if (p[i] == 0.0f) {
        ++zero;
        continue;
      }
      const double n = 1.0 / static_cast<double>(p[i]);
      if (!std::isfinite(n)) {
        ++nonfinite;
        continue;
      }
      sum += n;
      lo = std::min(lo, n);
      hi = std::max(hi, n);
    }
    stage.update(e);
  }
  stage.finish();
  const std::int64_t counted = rows - zero - nonfinite;
  if (counted == 0) {
    say("norms: none (zero rows %lld, not finite %lld)\n", static_cast<long long>(zero),
        static_cast<long long>(nonfinite));
  } else {
    say("norms: min %.6g mean %.6g max %.6g (zero rows %lld, not finite %lld)\n", lo,
        sum / static_cast<double>(counted), hi, static_cast<long long>(zero),
        static_cast<long long>(nonfinite));
  }
  std::fputs(text.c_str(), stdout);
  return 0;
}

int run_convert(const std::string& in, const std::string& out, const std::string& dtype,
                const std::string& format, const TableToolOptions& o) {
  const Progress::Style style = Progress::detect(o.quiet);
  // Everything about the output is checked before the input is read.
  const emb::io::Format out_format =
      format.empty() ? emb::io::format_from_extension(out) : emb::io::parse_format(format);
  std::optional<emb::QuantType> quant_to;
  std::optional<emb::DType> float_to;
  if (dtype == "int8") {
    quant_to = emb::QuantType::kInt8;
  } else if (dtype == "int4") {
    quant_to = emb::QuantType::kInt4;
  } else if (!dtype.empty()) {
    float_to = parse_float_dtype(dtype);
    if (!float_to) {
      throw emb::ValueError(
          fmt::format("convert: --dtype {} is not one of f32, f64, f16, bf16, int8, int4", dtype));
    }
  }
  if (quant_to && out_format != emb::io::Format::kSafetensors) {
    throw emb::ValueError(
        fmt::format("convert: {} tables are stored in safetensors files only, not {} ({})", dtype,
                    emb::io::format_name(out_format), out));
  }
  const Loaded l = load(in, o, style);
  if (!l.floating() && (quant_to || float_to || out_format != emb::io::Format::kSafetensors)) {
    if (out_format != emb::io::Format::kNpy && out_format != emb::io::Format::kSafetensors) {
      throw emb::ValueError(fmt::format("convert: {}: the table is {}; word vectors are floating",
                                        in, l.dtype_text()));
    }
    if (quant_to || float_to) {
      throw emb::ValueError(
          fmt::format("convert: {}: the table is {}, not floating", in, l.dtype_text()));
    }
  }
  emb::io::Table t;
  t.name = l.table.name.empty() ? "weight" : l.table.name;
  t.vocab = l.table.vocab;
  if (out_format == emb::io::Format::kSafetensors) {
    for (const auto& [key, value] : l.table.metadata) {
      if (key.rfind("emb.", 0) != 0) t.metadata[key] = value;  // the caller's, not emb's marks
    }
  }
  const std::int64_t rows = l.rows(), dim = l.dim();
  if (quant_to) {
    emb::QuantizedTable q;
    if (l.quant && l.quant->type == *quant_to) {
      q = *l.quant;  // already in that form: the bytes as they are
    } else {
      q.type = *quant_to;
      q.dim = dim;
      q.data =
          emb::Tensor::empty({rows, emb::quantized_row_bytes(q.type, dim)}, emb::DType::kUInt8);
      Stage stage(style, fmt::format("quantizing to {}", dtype), rows);
      for (std::int64_t b = 0; b < rows; b += kChunkRows) {
        const std::int64_t e = std::min(rows, b + kChunkRows);
        const emb::QuantizedTable part = emb::quantize_rowwise(float_rows(l, b, e), q.type);
        std::memcpy(q.data.data<std::uint8_t>() + b * q.data.size(1), part.data.raw_data(),
                    part.data.nbytes());
        stage.update(e);
      }
      stage.finish();
    }
    t.weight = q.data;
    t.metadata.insert(emb::quantized_metadata(t.name, q));
  } else {
    emb::Tensor w = l.quant ? float_table(l, style) : l.table.weight;
    if (float_to && w.dtype() != *float_to) {
      Stage stage(style, fmt::format("converting to {}", emb::dtype_name(*float_to)), 0);
      w = w.to(*float_to);
      stage.finish();
    }
    t.weight = w;
  }
  if (!t.vocab.empty() && out_format == emb::io::Format::kNpy && !o.quiet) {
    std::fprintf(stderr, "note: .npy holds no vocabulary; the %zu words are not written\n",
                 t.vocab.size());
  }
  Stage stage(style, "writing " + out, 0);
  emb::io::save_table(out, t, out_format);
  stage.finish();
  return 0;
}

int run_lookup(const std::string& path, const std::vector<std::string>& queries,
               const TableToolOptions& o) {
  const Loaded l = load(path, o, Progress::detect(o.quiet), /*random_access=*/true);
  const std::vector<std::int64_t> rows = resolve(l, queries, o, "lookup");
  if (!l.floating()) {
    throw emb::ValueError(
        fmt::format("lookup: {}: the table is {}, not a floating table", path, l.dtype_text()));
  }
  const emb::Tensor ids = emb::Tensor::from_vector(rows, {static_cast<std::int64_t>(rows.size())});
  const std::int64_t dim = l.dim();
  std::string line;
  const bool f64 = !l.quant && l.table.weight.dtype() == emb::DType::kFloat64;
  // Quantized rows through the quantized lookup; floating rows through emb::embedding.
  emb::Tensor values =
      l.quant ? emb::quantized_embedding(ids, *l.quant) : emb::embedding(ids, l.table.weight);
  if (!f64 && values.dtype() != emb::DType::kFloat32) values = values.to(emb::DType::kFloat32);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    line = queries[i];
    for (std::int64_t d = 0; d < dim; ++d) {
      line += ' ';
      line += f64 ? format_double(values.data<double>()[static_cast<std::int64_t>(i) * dim + d])
                  : format_float(values.data<float>()[static_cast<std::int64_t>(i) * dim + d]);
    }
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stdout);
  }
  return 0;
}

int run_neighbors(const std::string& path, const std::vector<std::string>& queries, std::int64_t k,
                  const TableToolOptions& o) {
  const Progress::Style style = Progress::detect(o.quiet);
  const auto t0 = Clock::now();
  const Loaded l = load(path, o, style);
  const double load_s = seconds_since(t0);
  const std::vector<std::int64_t> rows = resolve(l, queries, o, "neighbors");
  const auto t1 = Clock::now();
  const emb::Tensor table = float_table(l, style);
  const double convert_s = seconds_since(t1);
  const auto t2 = Clock::now();
  const emb::Tensor inv = emb::row_inverse_norms(table);
  const double norms_s = seconds_since(t2);
  std::vector<emb::CosineNeighbors> results;
  results.reserve(rows.size());
  const auto t3 = Clock::now();
  for (const std::int64_t r : rows) {
    results.push_back(emb::cosine_top_k(table, inv, table.select(r), k, r));
  }
  const double query_s = seconds_since(t3);
  std::string line;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const emb::CosineNeighbors& n = results[i];
    for (std::size_t j = 0; j < n.ids.size(); ++j) {
      line =
          fmt::format("{} {} {}\n", queries[i], row_name(l, n.ids[j]), format_float(n.scores[j]));
      std::fwrite(line.data(), 1, line.size(), stdout);
    }
  }
  if (!o.quiet) {
    std::fprintf(stderr,
                 "neighbors: %lld rows x %lld; load %.3f s%s; norms %.3f ms (once); "
                 "%zu queries in %.3f ms, %.3f ms per query (top %lld, %d threads, SIMD %s)\n",
                 static_cast<long long>(l.rows()), static_cast<long long>(l.dim()), load_s,
                 convert_s > 1e-4 ? fmt::format(", to float32 {:.3f} s", convert_s).c_str() : "",
                 norms_s * 1e3, rows.size(), query_s * 1e3,
                 query_s * 1e3 / static_cast<double>(std::max<std::size_t>(1, rows.size())),
                 static_cast<long long>(k), emb::get_num_threads(), emb::simd_target().c_str());
  }
  return 0;
}

}  // namespace emb_cli
