// Word vectors in text (word2vec, GloVe, fastText .vec) and word2vec binary.
#include "emb/io/word_vectors.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <functional>
#include <limits>
#include <string_view>
#include <vector>

#include "io/file_io.h"
#include "io/word_vectors_internal.h"

namespace emb::io {

namespace {

using detail::io::FileBytes;

static_assert(std::endian::native == std::endian::little,
              "word2vec binary reading assumes a little-endian machine");

constexpr std::size_t kMaxWordBytes = 1 << 16;
constexpr std::int64_t kMaxDim = 1 << 24;

[[noreturn]] void fail(const char* fmt, const std::string& file, std::int64_t line,
                       const std::string& what) {
  throw FormatError(std::string(fmt) + ": " + file +
                    (line > 0 ? ": line " + std::to_string(line) : std::string()) + ": " + what);
}

// Cuts s at the first ' ' or '\t': returns the token, advances s past the separators.
std::string_view next_token(std::string_view& s) {
  std::size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  std::size_t j = i;
  while (j < s.size() && s[j] != ' ' && s[j] != '\t') ++j;
  const std::string_view tok = s.substr(i, j - i);
  s.remove_prefix(j);
  return tok;
}

bool parse_count(std::string_view tok, std::int64_t& out) {
  if (tok.empty() || tok.size() > 18) return false;
  for (char c : tok) {
    if (c < '0' || c > '9') return false;
  }
  std::from_chars(tok.data(), tok.data() + tok.size(), out);
  return true;
}

// The rows of the words read so far, by word: open addressing over row numbers (a flat array,
// a few bytes per word, far fewer cache misses than a node-based map on millions of words).
class WordSet {
 public:
  explicit WordSet(std::size_t expected) {
    resize(std::bit_ceil(std::max<std::size_t>(16, expected * 2)));
  }

  // The row already holding word, or -1 after recording it as `row` (words[row] == word).
  std::int64_t insert(const std::vector<std::string>& words, std::string_view word,
                      std::int64_t row) {
    if ((size_ + 1) * 2 > slots_.size()) grow(words);
    std::size_t i = std::hash<std::string_view>{}(word)&mask_;
    for (;; i = (i + 1) & mask_) {
      const std::int64_t r = slots_[i];
      if (r < 0) break;
      if (words[static_cast<std::size_t>(r)] == word) return r;
    }
    slots_[i] = row;
    ++size_;
    return -1;
  }

 private:
  void resize(std::size_t n) {
    slots_.assign(n, -1);
    mask_ = n - 1;
  }
  void grow(const std::vector<std::string>& words) {
    const std::vector<std::int64_t> old = std::move(slots_);
    resize(old.size() * 2);
    for (const std::int64_t r : old) {
      if (r < 0) continue;
      std::size_t i = std::hash<std::string_view>{}(words[static_cast<std::size_t>(r)]) & mask_;
      while (slots_[i] >= 0) i = (i + 1) & mask_;
      slots_[i] = r;
    }
  }

  std::vector<std::int64_t> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

// Checks a word and records it as the next row.
void add_word(WordVectors& wv, WordSet& seen, std::string_view word, const char* fmt,
              const std::string& file, std::int64_t line) {
  if (word.empty()) fail(fmt, file, line, "empty word");
  if (word.size() > kMaxWordBytes) {
    fail(fmt, file, line, "word longer than " + std::to_string(kMaxWordBytes) + " bytes");
  }
  if (!detail::io::is_valid_utf8(word)) fail(fmt, file, line, "the word is not valid UTF-8");
  const auto row = static_cast<std::int64_t>(wv.words.size());
  wv.words.emplace_back(word);
  const std::int64_t first = seen.insert(wv.words, word, row);
  if (first >= 0) {
    fail(fmt, file, line,
         "duplicate word \"" + std::string(word) + "\" (first at row " + std::to_string(first) +
             ")");
  }
}

// WordVectors::index from the words (distinct, checked by the reader).
void fill_index(WordVectors& wv) {
  wv.index.reserve(wv.words.size());
  for (std::size_t i = 0; i < wv.words.size(); ++i) {
    wv.index.emplace(wv.words[i], static_cast<std::int64_t>(i));
  }
}

WordVectors parse_text(const FileBytes& f, bool with_index) {
  const char* fmt = "word vectors (text)";
  const std::string& file = f.path();
  std::string_view rest(reinterpret_cast<const char*>(f.data()), f.size());
  WordVectors wv;
  WordSet seen(0);
  std::vector<float> values;
  std::int64_t dim = -1;
  std::int64_t expected = -1;  // the header's count, -1 without a header
  std::int64_t line_no = 0;
  bool first = true;
  while (!rest.empty()) {
    const std::size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string_view probe = line;
    if (next_token(probe).empty()) continue;  // blank line
    if (first) {
      first = false;
      std::string_view p = line;
      const std::string_view a = next_token(p);
      const std::string_view b = next_token(p);
      const std::string_view c = next_token(p);
      std::int64_t count = 0;
      std::int64_t d = 0;
      if (c.empty() && parse_count(a, count) && parse_count(b, d)) {
        if (d < 1 || d > kMaxDim) {
          fail(fmt, file, line_no,
               "header dim " + std::to_string(d) + " is not in [1, " + std::to_string(kMaxDim) +
                   "]");
        }
        // Every value takes at least two bytes ("0 "): the header cannot promise more.
        const auto budget = static_cast<std::int64_t>(f.size() / 2);
        if (count > budget / d) {
          fail(fmt, file, line_no,
               "header " + std::to_string(count) + " x " + std::to_string(d) +
                   " values cannot fit in the file's " + std::to_string(f.size()) + " bytes");
        }
        expected = count;
        dim = d;
        values.reserve(static_cast<std::size_t>(count * d));
        wv.words.reserve(static_cast<std::size_t>(count));
        seen = WordSet(static_cast<std::size_t>(count));
        continue;
      }
    }
    if (expected >= 0 && static_cast<std::int64_t>(wv.words.size()) == expected) {
      fail(fmt, file, line_no,
           "more lines than the header's " + std::to_string(expected) + " words");
    }
    std::string_view p = line;
    const std::string_view word = next_token(p);
    add_word(wv, seen, word, fmt, file, line_no);
    std::int64_t n = 0;
    for (;;) {
      const std::string_view tok = next_token(p);
      if (tok.empty()) break;
      float v;
      const auto r = std::from_chars(tok.data(), tok.data() + tok.size(), v);
      if (r.ec != std::errc() || r.ptr != tok.data() + tok.size()) {
        if (r.ec == std::errc::result_out_of_range) {
          fail(fmt, file, line_no,
               "value \"" + std::string(tok.substr(0, 40)) + "\" is out of float32 range");
        }
        fail(fmt, file, line_no,
             "value " + std::to_string(n + 1) + " \"" + std::string(tok.substr(0, 40)) +
                 "\" is not a number");
      }
      values.push_back(v);
      ++n;
      if (dim >= 0 && n > dim) break;
    }
    if (dim < 0) {
      if (n < 1) fail(fmt, file, line_no, "the word \"" + std::string(word) + "\" has no values");
      dim = n;
    }
    if (n != dim) {
      fail(fmt, file, line_no,
           (n > dim ? "more than " : "") + std::to_string(n > dim ? dim : n) + " values" +
               (n > dim ? "" : ", expected " + std::to_string(dim)));
    }
  }
  const auto count = static_cast<std::int64_t>(wv.words.size());
  if (expected >= 0 && count != expected) {
    fail(fmt, file, 0,
         "truncated: the header says " + std::to_string(expected) + " words, the file has " +
             std::to_string(count));
  }
  if (dim < 0) fail(fmt, file, 0, "no vectors in the file");
  wv.vectors = Tensor::empty({count, dim}, DType::kFloat32);
  if (!values.empty())
    std::memcpy(wv.vectors.raw_data(), values.data(), values.size() * sizeof(float));
  if (with_index) fill_index(wv);
  return wv;
}

WordVectors parse_binary(const FileBytes& f, bool with_index) {
  const char* fmt = "word2vec binary";
  const std::string& file = f.path();
  const char* p = reinterpret_cast<const char*>(f.data());
  const std::size_t size = f.size();
  const std::size_t nl = std::string_view(p, std::min<std::size_t>(size, 256)).find('\n');
  if (nl == std::string_view::npos) fail(fmt, file, 1, "no \"<count> <dim>\" header line");
  std::string_view header(p, nl);
  if (!header.empty() && header.back() == '\r') header.remove_suffix(1);
  std::string_view h = header;
  const std::string_view a = next_token(h);
  const std::string_view b = next_token(h);
  std::int64_t count = 0;
  std::int64_t dim = 0;
  if (!parse_count(a, count) || !parse_count(b, dim) || !next_token(h).empty()) {
    fail(fmt, file, 1,
         "the header \"" + std::string(header.substr(0, 60)) + "\" is not \"<count> <dim>\"");
  }
  if (dim < 1 || dim > kMaxDim) {
    fail(fmt, file, 1,
         "header dim " + std::to_string(dim) + " is not in [1, " + std::to_string(kMaxDim) + "]");
  }
  std::size_t pos = nl + 1;
  // Each entry takes at least a one-byte word, a space and dim floats.
  const std::uint64_t entry_min = static_cast<std::uint64_t>(dim) * 4 + 2;
  if (static_cast<std::uint64_t>(count) > (size - pos) / entry_min) {
    fail(fmt, file, 1,
         "header " + std::to_string(count) + " x " + std::to_string(dim) +
             " cannot fit in the file's " + std::to_string(size) + " bytes");
  }
  WordVectors wv;
  wv.words.reserve(static_cast<std::size_t>(count));
  WordSet seen(static_cast<std::size_t>(count));
  wv.vectors = Tensor::empty({count, dim}, DType::kFloat32);
  auto* out = static_cast<std::byte*>(wv.vectors.raw_data());
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * 4;
  for (std::int64_t i = 0; i < count; ++i) {
    while (pos < size && (p[pos] == '\n' || p[pos] == '\r')) ++pos;
    const std::size_t start = pos;
    const std::size_t limit = std::min(size, start + kMaxWordBytes + 1);
    while (pos < limit && p[pos] != ' ') ++pos;
    if (pos == size) {
      fail(fmt, file, 0,
           "truncated in word " + std::to_string(i + 1) + " of " + std::to_string(count));
    }
    if (p[pos] != ' ')
      fail(fmt, file, 0,
           "word " + std::to_string(i + 1) + " is longer than " + std::to_string(kMaxWordBytes) +
               " bytes");
    add_word(wv, seen, std::string_view(p + start, pos - start), fmt, file, 0);
    ++pos;
    if (size - pos < row_bytes) {
      fail(fmt, file, 0,
           "truncated in the vector of word " + std::to_string(i + 1) + " \"" + wv.words.back() +
               "\"");
    }
    std::memcpy(out + static_cast<std::size_t>(i) * row_bytes, p + pos, row_bytes);
    pos += row_bytes;
  }
  while (pos < size && (p[pos] == '\n' || p[pos] == '\r' || p[pos] == ' ')) ++pos;
  if (pos != size) {
    fail(fmt, file, 0,
         std::to_string(size - pos) + " bytes after the header's " + std::to_string(count) +
             " words");
  }
  if (with_index) fill_index(wv);
  return wv;
}

// Throws ValueError unless wv can be written: [count, dim] floating, one valid word per row.
Tensor checked_vectors(const WordVectors& wv, const char* op) {
  const Tensor& v = wv.vectors;
  if (!v.defined() || v.dim() != 2 || !is_floating(v.dtype())) {
    throw ValueError(std::string(op) + ": vectors must be a 2-D floating tensor");
  }
  if (v.size(0) != static_cast<std::int64_t>(wv.words.size())) {
    throw ValueError(std::string(op) + ": " + std::to_string(wv.words.size()) + " words for " +
                     std::to_string(v.size(0)) + " vectors");
  }
  std::unordered_map<std::string_view, std::size_t> seen;
  for (std::size_t i = 0; i < wv.words.size(); ++i) {
    const std::string& w = wv.words[i];
    if (w.empty() || w.find_first_of(" \t\n\r") != std::string::npos ||
        !detail::io::is_valid_utf8(w)) {
      throw ValueError(std::string(op) + ": word " + std::to_string(i) +
                       " is empty, holds whitespace or is not valid UTF-8");
    }
    if (!seen.emplace(w, i).second) {
      throw ValueError(std::string(op) + ": duplicate word \"" + w + "\" at rows " +
                       std::to_string(seen[w]) + " and " + std::to_string(i));
    }
  }
  return v.dtype() == DType::kFloat32 ? v : v.to(DType::kFloat32);
}

}  // namespace

std::optional<std::int64_t> WordVectors::find(const std::string& word) const {
  const auto it = index.find(word);
  if (it == index.end()) return std::nullopt;
  return it->second;
}

void WordVectors::build_index() {
  std::unordered_map<std::string, std::int64_t> m;
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (!m.emplace(words[i], static_cast<std::int64_t>(i)).second) {
      throw ValueError("WordVectors::build_index: duplicate word \"" + words[i] + "\"");
    }
  }
  index = std::move(m);
}

WordVectors read_text_vectors(const std::string& path) {
  return parse_text(*FileBytes::open(path, "read_text_vectors"), true);
}

WordVectors read_word2vec_binary(const std::string& path) {
  return parse_binary(*FileBytes::open(path, "read_word2vec_binary"), true);
}

WordVectors parse_text_vectors(std::span<const std::byte> bytes, const std::string& name) {
  return parse_text(*FileBytes::borrow(bytes, name), true);
}

WordVectors parse_word2vec_binary(std::span<const std::byte> bytes, const std::string& name) {
  return parse_binary(*FileBytes::borrow(bytes, name), true);
}

void write_text_vectors(const std::string& path, const WordVectors& wv, TextHeader header) {
  const Tensor v = checked_vectors(wv, "write_text_vectors");
  const std::int64_t count = v.size(0);
  const std::int64_t dim = v.size(1);
  detail::io::AtomicWriter w(path, "write_text_vectors");
  if (header == TextHeader::kCount)
    w.write(std::to_string(count) + " " + std::to_string(dim) + "\n");
  const float* x = v.data<float>();
  std::string line;
  char buf[32];
  for (std::int64_t i = 0; i < count; ++i) {
    line = wv.words[static_cast<std::size_t>(i)];
    for (std::int64_t d = 0; d < dim; ++d) {
      const auto r = std::to_chars(buf, buf + sizeof(buf), x[i * dim + d]);  // shortest exact
      line.push_back(' ');
      line.append(buf, r.ptr);
    }
    line.push_back('\n');
    w.write(line);
  }
  w.commit();
}

void write_word2vec_binary(const std::string& path, const WordVectors& wv) {
  const Tensor v = checked_vectors(wv, "write_word2vec_binary");
  const std::int64_t count = v.size(0);
  const std::int64_t dim = v.size(1);
  detail::io::AtomicWriter w(path, "write_word2vec_binary");
  w.write(std::to_string(count) + " " + std::to_string(dim) + "\n");
  const auto* x = static_cast<const std::byte*>(v.raw_data());
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * 4;
  for (std::int64_t i = 0; i < count; ++i) {
    w.write(wv.words[static_cast<std::size_t>(i)] + " ");
    w.write(x + static_cast<std::size_t>(i) * row_bytes, row_bytes);
    w.write("\n", 1);
  }
  w.commit();
}

namespace internal {

WordVectors read_text_vectors_unindexed(const std::string& path) {
  return parse_text(*FileBytes::open(path, "read_text_vectors"), false);
}

WordVectors read_word2vec_binary_unindexed(const std::string& path) {
  return parse_binary(*FileBytes::open(path, "read_word2vec_binary"), false);
}

}  // namespace internal

}  // namespace emb::io
