#include "text_data.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <numeric>
#include <sstream>

#include "emb/error.h"
#include "emb/io/word_vectors.h"

namespace emb_cli {

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f' || c == '\0';
}

bool is_label(std::string_view token) {
  return token.starts_with(kLabelPrefix);
}

}  // namespace

std::uint32_t fasttext_hash(std::string_view s) {
  std::uint32_t h = 2166136261u;
  for (char c : s) {
    h ^= static_cast<std::uint32_t>(static_cast<std::int8_t>(c));  // signed chars, as fastText
    h *= 16777619u;
  }
  return h;
}

void add_word_ngrams(const std::vector<std::uint32_t>& hashes, int word_ngrams, std::int64_t nwords,
                     std::int64_t bucket, std::vector<std::int64_t>& ids) {
  if (bucket <= 0) return;
  const auto widen = [](std::uint32_t h) {  // int32 -> uint64 sign extension
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(static_cast<std::int32_t>(h)));
  };
  const std::size_t n = hashes.size();
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t h = widen(hashes[i]);
    for (std::size_t j = i + 1; j < n && j < i + static_cast<std::size_t>(word_ngrams); ++j) {
      h = h * 116049371u + widen(hashes[j]);
      ids.push_back(nwords + static_cast<std::int64_t>(h % static_cast<std::uint64_t>(bucket)));
    }
  }
}

void tokenize(std::string_view line, Tokens& out) {
  out.words.clear();
  out.labels.clear();
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    std::size_t j = i;
    while (j < line.size() && !is_space(line[j])) ++j;
    if (j > i) {
      const std::string_view token = line.substr(i, j - i);
      (is_label(token) ? out.labels : out.words).push_back(token);
    }
    i = j;
  }
  out.words.push_back(kEndOfLine);
}

TextFile read_text_file(const std::string& path) {
  TextFile f;
  f.path = path;
  if (path == "-") {
    std::ostringstream buf;
    buf << std::cin.rdbuf();
    f.text = buf.str();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw emb::IoError(fmt::format("{}: cannot open the file", path));
    f.text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) throw emb::IoError(fmt::format("{}: read error", path));
  }
  std::string_view text(f.text);
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    const std::size_t bad = emb::io::find_invalid_utf8(line);
    if (bad != std::string_view::npos) {
      throw emb::FormatError(fmt::format("{}:{}: invalid UTF-8 at byte {} of the line (0x{:02x})",
                                         path, f.lines.size() + 1, bad + 1,
                                         static_cast<unsigned char>(line[bad])));
    }
    f.lines.push_back(line);
    start = end + 1;
  }
  return f;
}

void Vocabulary::build_index() {
  word_index.clear();
  label_index.clear();
  const auto check = [](const std::string& s, const char* what, std::size_t i) {
    if (s.empty() || std::any_of(s.begin(), s.end(), is_space)) {
      throw emb::FormatError(
          fmt::format("vocabulary: {} {} \"{}\" is empty or holds whitespace", what, i, s));
    }
  };
  for (std::size_t i = 0; i < words.size(); ++i) {
    check(words[i], "word", i);
    if (!word_index.emplace(words[i], static_cast<std::int64_t>(i)).second) {
      throw emb::FormatError(fmt::format("vocabulary: word \"{}\" appears twice", words[i]));
    }
  }
  for (std::size_t i = 0; i < labels.size(); ++i) {
    check(labels[i], "label", i);
    if (!label_index.emplace(labels[i], static_cast<std::int64_t>(i)).second) {
      throw emb::FormatError(fmt::format("vocabulary: label \"{}\" appears twice", labels[i]));
    }
  }
}

std::int64_t Vocabulary::word_id(std::string_view w) const {
  auto it = word_index.find(w);
  return it == word_index.end() ? -1 : it->second;
}

std::int64_t Vocabulary::label_id(std::string_view l) const {
  auto it = label_index.find(l);
  return it == label_index.end() ? -1 : it->second;
}

namespace {

void check_example(const TextFile& file, std::size_t line, const Tokens& tokens) {
  if (tokens.labels.empty()) {
    throw emb::FormatError(
        fmt::format("{}:{}: the line has no label (expected \"__label__<name> word word ...\")",
                    file.path, line));
  }
  if (tokens.words.size() == 1) {  // only "</s>"
    throw emb::FormatError(fmt::format("{}:{}: the line has labels but no text", file.path, line));
  }
}

bool is_blank(std::string_view line) {
  return std::all_of(line.begin(), line.end(), is_space);
}

// Sorted ids: descending count, ties by first appearance.
void sort_by_count(std::vector<std::string>& names, std::vector<std::int64_t>& counts) {
  std::vector<std::size_t> order(names.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return counts[a] > counts[b]; });
  std::vector<std::string> n2;
  std::vector<std::int64_t> c2;
  for (std::size_t i : order) {
    n2.push_back(std::move(names[i]));
    c2.push_back(counts[i]);
  }
  names = std::move(n2);
  counts = std::move(c2);
}

}  // namespace

Vocabulary build_vocabulary(const TextFile& file, std::int64_t min_count) {
  std::unordered_map<std::string_view, std::size_t> words, labels;
  Vocabulary v;
  Tokens tokens;
  std::int64_t examples = 0;
  for (std::size_t i = 0; i < file.lines.size(); ++i) {
    if (is_blank(file.lines[i])) continue;
    tokenize(file.lines[i], tokens);
    check_example(file, i + 1, tokens);
    ++examples;
    for (std::string_view w : tokens.words) {
      auto [it, fresh] = words.emplace(w, v.words.size());
      if (fresh) {
        v.words.emplace_back(w);
        v.word_counts.push_back(0);
      }
      ++v.word_counts[it->second];
    }
    for (std::string_view l : tokens.labels) {
      auto [it, fresh] = labels.emplace(l, v.labels.size());
      if (fresh) {
        v.labels.emplace_back(l);
        v.label_counts.push_back(0);
      }
      ++v.label_counts[it->second];
    }
  }
  if (examples == 0) {
    throw emb::FormatError(fmt::format("{}: no examples (the file is empty or blank)", file.path));
  }
  sort_by_count(v.words, v.word_counts);
  sort_by_count(v.labels, v.label_counts);
  std::size_t keep = 0;
  while (keep < v.words.size() && v.word_counts[keep] >= min_count) ++keep;
  v.words.resize(keep);
  v.word_counts.resize(keep);
  v.build_index();
  return v;
}

Dataset make_dataset(const TextFile& file, const Vocabulary& vocab, const ReadOptions& options) {
  Dataset d;
  Tokens tokens;
  std::vector<std::uint32_t> hashes;
  const auto nwords = static_cast<std::int64_t>(vocab.words.size());
  for (std::size_t i = 0; i < file.lines.size(); ++i) {
    if (options.labels_required) {
      if (is_blank(file.lines[i])) continue;
      tokenize(file.lines[i], tokens);
      check_example(file, i + 1, tokens);
      for (std::string_view l : tokens.labels) {
        const std::int64_t id = vocab.label_id(l);
        if (id < 0) {
          throw emb::FormatError(
              fmt::format("{}:{}: label \"{}\" is not one of the model's {} labels", file.path,
                          i + 1, l, vocab.labels.size()));
        }
        d.labels.push_back(id);
      }
    } else {
      tokenize(file.lines[i], tokens);
    }
    hashes.clear();
    for (std::string_view w : tokens.words) {
      const std::int64_t id = vocab.word_id(w);
      if (id >= 0) d.ids.push_back(id);
      hashes.push_back(fasttext_hash(w));
    }
    if (options.word_ngrams > 1) {
      add_word_ngrams(hashes, options.word_ngrams, nwords, options.bucket, d.ids);
    }
    d.offsets.push_back(static_cast<std::int64_t>(d.ids.size()));
    d.label_offsets.push_back(static_cast<std::int64_t>(d.labels.size()));
    d.line.push_back(static_cast<std::int64_t>(i + 1));
  }
  return d;
}

}  // namespace emb_cli
