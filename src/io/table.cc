// load_table / save_table: one table from or to any supported format.
#include "emb/io/table.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "emb/io/npy.h"
#include "emb/io/safetensors.h"
#include "emb/io/word_vectors.h"
#include "io/file_io.h"
#include "io/word_vectors_internal.h"

namespace emb::io {

namespace {

constexpr const char* kVocabKey = "emb.vocab";  // safetensors metadata: JSON array of words

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_count_line(std::string_view line) {
  // "<digits> <digits>" (the word2vec header)
  const std::size_t sp = line.find(' ');
  if (sp == 0 || sp == std::string_view::npos) return false;
  const std::string_view a = line.substr(0, sp);
  std::string_view b = line.substr(sp + 1);
  while (!b.empty() && (b.back() == '\r' || b.back() == ' ')) b.remove_suffix(1);
  auto digits = [](std::string_view t) {
    return !t.empty() &&
           std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  return digits(a) && digits(b);
}

std::vector<std::string> vocab_from_metadata(const std::map<std::string, std::string>& meta,
                                             std::int64_t rows, const std::string& path) {
  const auto it = meta.find(kVocabKey);
  if (it == meta.end()) return {};
  nlohmann::json words;
  try {
    words = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError("load_table: " + path + ": metadata \"emb.vocab\" is not JSON (" + e.what() +
                      ")");
  }
  if (!words.is_array() || static_cast<std::int64_t>(words.size()) != rows) {
    throw FormatError("load_table: " + path + ": metadata \"emb.vocab\" is not an array of " +
                      std::to_string(rows) + " words");
  }
  std::vector<std::string> out;
  out.reserve(words.size());
  for (const auto& w : words) {
    if (!w.is_string())
      throw FormatError("load_table: " + path + ": a word of \"emb.vocab\" is not a string");
    out.push_back(w.get<std::string>());
  }
  WordVectors check;
  check.words = out;
  try {
    check.build_index();
  } catch (const ValueError& e) {
    throw FormatError("load_table: " + path + ": \"emb.vocab\": " + e.what());
  }
  return out;
}

// The weight of a safetensors file: options.tensor, else "weight", else the only 2-D tensor
// (or the only 2-D one named "*.weight").
std::pair<std::string, Tensor> pick_weight(const TensorFile& f, const std::string& wanted,
                                           const std::string& path) {
  if (!wanted.empty()) return {wanted, f.at(wanted)};
  if (f.contains("weight")) return {"weight", f.at("weight")};
  std::vector<const std::pair<std::string, Tensor>*> two_d, named;
  for (const auto& p : f.tensors) {
    if (p.second.dim() != 2) continue;
    two_d.push_back(&p);
    if (ends_with(p.first, ".weight")) named.push_back(&p);
  }
  if (two_d.size() == 1) return *two_d[0];
  if (named.size() == 1) return *named[0];
  std::string names;
  for (const auto* p : two_d) names += (names.empty() ? "\"" : ", \"") + p->first + "\"";
  throw ValueError("load_table: " + path + ": " +
                   (two_d.empty() ? std::string("no 2-D tensor to use as the table")
                                  : "several 2-D tensors (" + names + "); name one"));
}

}  // namespace

std::string_view format_name(Format format) {
  switch (format) {
    case Format::kSafetensors:
      return "safetensors";
    case Format::kNpy:
      return "npy";
    case Format::kWord2VecBinary:
      return "word2vec-binary";
    case Format::kTextVectors:
      return "text";
    case Format::kGloVe:
      return "glove";
  }
  return "?";
}

Format parse_format(std::string_view name) {
  if (name == "safetensors") return Format::kSafetensors;
  if (name == "npy") return Format::kNpy;
  if (name == "word2vec-binary" || name == "bin") return Format::kWord2VecBinary;
  if (name == "text" || name == "word2vec" || name == "vec" || name == "txt")
    return Format::kTextVectors;
  if (name == "glove") return Format::kGloVe;
  throw ValueError("parse_format: unknown format \"" + std::string(name) +
                   "\" (safetensors, npy, word2vec-binary, text, glove)");
}

Format format_from_extension(const std::string& path) {
  if (ends_with(path, ".safetensors")) return Format::kSafetensors;
  if (ends_with(path, ".npy")) return Format::kNpy;
  if (ends_with(path, ".bin")) return Format::kWord2VecBinary;
  if (ends_with(path, ".vec") || ends_with(path, ".txt")) return Format::kTextVectors;
  if (ends_with(path, ".glove")) return Format::kGloVe;
  throw ValueError("format_from_extension: " + path +
                   ": unknown extension (.safetensors, .npy, .bin, .vec, .txt, .glove)");
}

Format detect_format(const std::string& path) {
  // The first bytes only, read: mapping the file and reading them through the mapping would
  // fault in the kernel's whole read-around window (megabytes on some devices).
  const detail::io::FileStart start = detail::io::read_file_start(path, "detect_format", 4096);
  const auto* b = reinterpret_cast<const unsigned char*>(start.bytes.data());
  const std::uint64_t size = start.size;
  if (start.bytes.size() >= 6 && std::memcmp(b, "\x93NUMPY", 6) == 0) return Format::kNpy;
  if (start.bytes.size() >= 9 && b[8] == '{') {
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | b[i];
    if (n <= size - 8) return Format::kSafetensors;
  }
  const std::string_view head(reinterpret_cast<const char*>(b), start.bytes.size());
  const std::size_t nl = head.find('\n');
  if (nl != std::string_view::npos && is_count_line(head.substr(0, nl))) {
    const std::string_view body = head.substr(nl + 1);
    const bool binary = std::any_of(body.begin(), body.end(), [](char c) {
      const auto u = static_cast<unsigned char>(c);
      return u < 0x09 || (u > 0x0d && u < 0x20) || u == 0x7f;
    });
    return binary ? Format::kWord2VecBinary : Format::kTextVectors;
  }
  return Format::kGloVe;
}

Table load_table(const std::string& path, const LoadTableOptions& options) {
  Table t;
  t.format = detect_format(path);
  switch (t.format) {
    case Format::kSafetensors: {
      TensorFile f = read_safetensors(path, options.access);
      auto [name, weight] = pick_weight(f, options.tensor, path);
      if (weight.dim() != 2) {
        throw ValueError("load_table: " + path + ": tensor \"" + name + "\" has shape " +
                         shape_to_string(weight.shape()) + ", not a 2-D table");
      }
      t.vocab = vocab_from_metadata(f.metadata, weight.size(0), path);
      t.name = name;
      t.weight = weight;
      t.tensors = std::move(f.tensors);
      t.metadata = std::move(f.metadata);
      break;
    }
    case Format::kNpy: {
      t.weight = read_npy(path, options.access);
      if (t.weight.dim() != 2) {
        throw ValueError("load_table: " + path + ": the array has shape " +
                         shape_to_string(t.weight.shape()) + ", not a 2-D table");
      }
      break;
    }
    case Format::kWord2VecBinary:
    case Format::kTextVectors:
    case Format::kGloVe: {
      // The vocabulary only: no word -> row index to build and throw away.
      WordVectors wv = t.format == Format::kWord2VecBinary
                           ? internal::read_word2vec_binary_unindexed(path)
                           : internal::read_text_vectors_unindexed(path);
      t.weight = wv.vectors;
      t.vocab = std::move(wv.words);
      break;
    }
  }
  // A mapped weight is read-only (a copy is writable): advise its pages only.
  if (options.access == Access::kMap && options.random_access && t.weight.is_read_only()) {
    detail::io::advise_random(t.weight.raw_data(), t.weight.nbytes());
  }
  return t;
}

void save_table(const std::string& path, const Table& table) {
  save_table(path, table, format_from_extension(path));
}

void save_table(const std::string& path, const Table& table, Format format) {
  if (!table.weight.defined() || table.weight.dim() != 2) {
    throw ValueError("save_table: the weight must be a 2-D tensor");
  }
  const std::int64_t rows = table.weight.size(0);
  if (!table.vocab.empty() && static_cast<std::int64_t>(table.vocab.size()) != rows) {
    throw ValueError("save_table: " + std::to_string(table.vocab.size()) + " words for " +
                     std::to_string(rows) + " rows");
  }
  switch (format) {
    case Format::kSafetensors: {
      std::vector<std::pair<std::string, Tensor>> tensors;
      bool has_weight = false;
      for (const auto& p : table.tensors)
        has_weight |=
            p.second.shares_storage_with(table.weight) && p.second.shape() == table.weight.shape();
      if (has_weight) {
        tensors = table.tensors;
      } else {
        tensors.emplace_back(table.name.empty() ? "weight" : table.name, table.weight);
      }
      std::map<std::string, std::string> meta = table.metadata;
      meta.erase(kVocabKey);
      if (!table.vocab.empty()) {
        try {
          meta[kVocabKey] = nlohmann::json(table.vocab).dump();
        } catch (const nlohmann::json::exception&) {
          throw ValueError("save_table: a word is not valid UTF-8");
        }
      }
      write_safetensors(path, tensors, meta);
      return;
    }
    case Format::kNpy:
      write_npy(path, table.weight);
      return;
    case Format::kWord2VecBinary:
    case Format::kTextVectors:
    case Format::kGloVe: {
      WordVectors wv;
      wv.vectors = table.weight;
      if (table.vocab.empty()) {
        for (std::int64_t i = 0; i < rows; ++i) wv.words.push_back(std::to_string(i));
      } else {
        wv.words = table.vocab;
      }
      if (format == Format::kWord2VecBinary) {
        write_word2vec_binary(path, wv);
      } else {
        write_text_vectors(path, wv,
                           format == Format::kGloVe ? TextHeader::kNone : TextHeader::kCount);
      }
      return;
    }
  }
}

}  // namespace emb::io
