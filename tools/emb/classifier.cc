#include "classifier.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>

#include "emb/embedding_bag.h"
#include "emb/error.h"
#include "emb/io/safetensors.h"
#include "emb/version.h"
#include "dense_ops.h"

namespace emb_cli {

namespace {

std::string join_lines(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) {
    out += s;
    out += '\n';
  }
  return out;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

template <typename T>
T parse_number(const std::string& path, const std::string& key, const std::string& text) {
  T value{};
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end) {
    throw emb::FormatError(
        fmt::format("{}: hyper-parameter {} = \"{}\" is not a number", path, key, text));
  }
  return value;
}

}  // namespace

void linear_softmax(const float* w, std::int64_t rows, std::int64_t dim, const float* h, float* p) {
  float max = -INFINITY;
  for (std::int64_t j = 0; j < rows; ++j) {
    const float* wj = w + j * dim;
    const float acc = dot(wj, h, dim);
    p[j] = acc;
    max = std::max(max, acc);
  }
  float z = 0;
  for (std::int64_t j = 0; j < rows; ++j) {
    p[j] = std::exp(p[j] - max);
    z += p[j];
  }
  for (std::int64_t j = 0; j < rows; ++j) p[j] /= z;
}

void Classifier::save(const std::string& path) const {
  const auto counts = [](const std::vector<std::int64_t>& c) {
    return emb::Tensor::from_vector<std::int64_t>(c, {static_cast<std::int64_t>(c.size())});
  };
  std::map<std::string, std::string> meta{
      {"format", kModelFormat},
      {"format_version", kModelFormatVersion},
      {"emb_version", emb::version()},
      {"model", "embedding_bag_mean+linear+softmax"},
      {"words", join_lines(vocab.words)},
      {"labels", join_lines(vocab.labels)},
      {"dim", std::to_string(hp.dim)},
      {"epoch", std::to_string(hp.epoch)},
      {"lr", fmt::format("{}", hp.lr)},
      {"minCount", std::to_string(hp.min_count)},
      {"wordNgrams", std::to_string(hp.word_ngrams)},
      {"bucket", std::to_string(hp.bucket)},
      {"thread", std::to_string(hp.thread)},
      {"batch", std::to_string(hp.batch)},
      {"seed", std::to_string(hp.seed)},
      {"optimizer", hp.optimizer},
  };
  emb::io::save_safetensors(path,
                            {{"input.weight", input},
                             {"output.weight", output},
                             {"words.count", counts(vocab.word_counts)},
                             {"labels.count", counts(vocab.label_counts)}},
                            meta);
}

Classifier Classifier::load(const std::string& path) {
  emb::io::Safetensors f = emb::io::load_safetensors(path);
  const auto meta = [&](const std::string& key) -> const std::string& {
    auto it = f.metadata.find(key);
    if (it == f.metadata.end()) {
      throw emb::FormatError(fmt::format("{}: not an emb model file (no \"{}\" entry)", path, key));
    }
    return it->second;
  };
  if (meta("format") != kModelFormat) {
    throw emb::FormatError(
        fmt::format("{}: format \"{}\" is not an emb text classifier", path, meta("format")));
  }
  if (meta("format_version") != kModelFormatVersion) {
    throw emb::FormatError(
        fmt::format("{}: model file version {} (written by emb {}); this emb {} reads version {}",
                    path, meta("format_version"),
                    f.metadata.count("emb_version") ? f.metadata.at("emb_version") : "?",
                    emb::version(), kModelFormatVersion));
  }
  Classifier c;
  c.hp.dim = parse_number<std::int64_t>(path, "dim", meta("dim"));
  c.hp.epoch = parse_number<std::int64_t>(path, "epoch", meta("epoch"));
  c.hp.lr = parse_number<double>(path, "lr", meta("lr"));
  c.hp.min_count = parse_number<std::int64_t>(path, "minCount", meta("minCount"));
  c.hp.word_ngrams = parse_number<std::int64_t>(path, "wordNgrams", meta("wordNgrams"));
  c.hp.bucket = parse_number<std::int64_t>(path, "bucket", meta("bucket"));
  c.hp.thread = parse_number<std::int64_t>(path, "thread", meta("thread"));
  c.hp.batch = parse_number<std::int64_t>(path, "batch", meta("batch"));
  c.hp.seed = parse_number<std::uint64_t>(path, "seed", meta("seed"));
  c.hp.optimizer = meta("optimizer");
  if (c.hp.dim <= 0 || c.hp.word_ngrams <= 0 || c.hp.bucket < 0) {
    throw emb::FormatError(fmt::format("{}: dim {}, wordNgrams {}, bucket {} are out of range",
                                       path, c.hp.dim, c.hp.word_ngrams, c.hp.bucket));
  }
  c.vocab.words = split_lines(meta("words"));
  c.vocab.labels = split_lines(meta("labels"));
  try {
    c.vocab.build_index();
  } catch (const emb::FormatError& e) {
    throw emb::FormatError(fmt::format("{}: {}", path, e.what()));
  }
  const auto nwords = static_cast<std::int64_t>(c.vocab.words.size());
  const auto nlabels = static_cast<std::int64_t>(c.vocab.labels.size());
  if (nlabels == 0) throw emb::FormatError(fmt::format("{}: the model has no labels", path));

  const auto expect = [&](const std::string& name, emb::DType dtype, const emb::Shape& shape) {
    const emb::Tensor& t = f.tensor(name);
    if (t.dtype() != dtype || t.shape() != shape) {
      throw emb::FormatError(fmt::format(
          "{}: tensor {} is {} {}, expected {} {}", path, name, emb::dtype_name(t.dtype()),
          emb::shape_to_string(t.shape()), emb::dtype_name(dtype), emb::shape_to_string(shape)));
    }
    return t;
  };
  c.input = expect("input.weight", emb::DType::kFloat32, {nwords + c.bucket_rows(), c.hp.dim});
  c.output = expect("output.weight", emb::DType::kFloat32, {nlabels, c.hp.dim});
  const emb::Tensor wc = expect("words.count", emb::DType::kInt64, {nwords});
  const emb::Tensor lc = expect("labels.count", emb::DType::kInt64, {nlabels});
  c.vocab.word_counts.assign(wc.data<std::int64_t>(), wc.data<std::int64_t>() + nwords);
  c.vocab.label_counts.assign(lc.data<std::int64_t>(), lc.data<std::int64_t>() + nlabels);
  return c;
}

std::vector<std::vector<std::pair<std::int64_t, float>>> Classifier::predict(const Dataset& d,
                                                                             std::int64_t begin,
                                                                             std::int64_t end,
                                                                             std::int64_t k) const {
  const std::int64_t n = end - begin;
  std::vector<std::vector<std::pair<std::int64_t, float>>> out(static_cast<std::size_t>(n));
  if (n <= 0) return out;
  // One embedding_bag call for the whole range: ids are viewed, offsets rebased to 0.
  const std::int64_t first = d.offsets[begin];
  std::vector<std::int64_t> offsets(d.offsets.begin() + begin, d.offsets.begin() + end);
  for (auto& o : offsets) o -= first;
  std::vector<std::int64_t> ids(d.ids.begin() + first, d.ids.begin() + d.offsets[end]);
  const emb::Tensor hidden = emb::embedding_bag(
      emb::Tensor::view(ids.data(), {static_cast<std::int64_t>(ids.size())}, emb::DType::kInt64),
      input, emb::Tensor::view(offsets.data(), {n}, emb::DType::kInt64),
      emb::EmbeddingBagFuncOptions().mode(emb::EmbeddingBagMode::kMean));
  const std::int64_t nlabels = output.size(0);
  const std::int64_t kk = std::min(k, nlabels);
  std::vector<float> p(static_cast<std::size_t>(nlabels));
  std::vector<std::int64_t> order(static_cast<std::size_t>(nlabels));
  for (std::int64_t b = 0; b < n; ++b) {
    linear_softmax(output.data<float>(), nlabels, hp.dim, hidden.data<float>() + b * hp.dim,
                   p.data());
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(
        order.begin(), order.begin() + kk, order.end(),
        [&](std::int64_t x, std::int64_t y) { return p[x] > p[y] || (p[x] == p[y] && x < y); });
    for (std::int64_t j = 0; j < kk; ++j) out[b].emplace_back(order[j], p[order[j]]);
  }
  return out;
}

}  // namespace emb_cli
