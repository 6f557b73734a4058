// NumPy .npy: magic, version, a Python-literal header dict, then the C-order data.
#include "emb/io/npy.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>
#include <span>
#include <vector>

#include "io/file_io.h"
#include "io/reader_common.h"

namespace emb::io {

namespace {

using detail::io::FileBytes;

constexpr char kMagic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};
constexpr std::size_t kMaxRank = 32;

struct Descr {
  const char* text;
  DType dtype;
};
// What NumPy writes on a little-endian machine ('|' for one-byte types).
constexpr Descr kDescrs[] = {
    {"<f8", DType::kFloat64}, {"<f4", DType::kFloat32}, {"<f2", DType::kFloat16},
    {"<i8", DType::kInt64},   {"<i4", DType::kInt32},   {"|i1", DType::kInt8},
    {"|u1", DType::kUInt8},   {"|b1", DType::kUInt8},   {"<i1", DType::kInt8},
    {"<u1", DType::kUInt8},
};

struct Header {
  DType dtype = DType::kFloat32;
  Shape shape;
};

// A parser of the header: {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& file) : s_(text), file_(file) {}

  Header parse() {
    Header h;
    std::set<std::string> seen;
    skip_ws();
    expect('{');
    for (;;) {
      skip_ws();
      if (peek() == '}') {
        ++i_;
        break;
      }
      const std::string key = quoted();
      if (!seen.insert(key).second) fail("duplicate key '" + key + "'");
      skip_ws();
      expect(':');
      skip_ws();
      if (key == "descr") {
        std::string d = quoted();
        // Byte order does not apply to one-byte types: ">u1" is "|u1".
        if (d.size() == 3 && d[0] == '>' && d[2] == '1') d[0] = '|';
        bool found = false;
        for (const Descr& k : kDescrs) {
          if (d == k.text) {
            h.dtype = k.dtype;
            found = true;
          }
        }
        if (!found && !d.empty() && d[0] == '>') {
          fail("big-endian dtype '" + d + "' is not supported (little-endian only)");
        }
        if (!found) {
          fail("unsupported dtype '" + d + "' (supported: <f8, <f4, <f2, <i8, <i4, |i1, |u1, |b1)");
        }
      } else if (key == "fortran_order") {
        if (s_.substr(i_, 4) == "True")
          fail("Fortran-order arrays are not supported (C order only)");
        if (s_.substr(i_, 5) != "False") fail("fortran_order is neither True nor False");
        i_ += 5;
      } else if (key == "shape") {
        h.shape = shape();
      } else {
        fail("unknown key '" + key + "'");
      }
      skip_ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      skip_ws();
      expect('}');
      break;
    }
    for (const char* k : {"descr", "fortran_order", "shape"}) {
      if (seen.count(k) == 0) fail(std::string("the header lacks '") + k + "'");
    }
    skip_ws();
    if (i_ != s_.size()) fail("unexpected bytes after the header dict");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError("npy: " + file_ + ": " + what + " (header byte " + std::to_string(i_) + ")");
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r'))
      ++i_;
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  std::string quoted() {
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted key or string");
    const std::size_t end = s_.find(q, i_ + 1);
    if (end == std::string_view::npos || end - i_ > 64) fail("unterminated string");
    std::string out(s_.substr(i_ + 1, end - i_ - 1));
    i_ = end + 1;
    return out;
  }
  Shape shape() {
    Shape out;
    expect('(');
    for (;;) {
      skip_ws();
      if (peek() == ')') {
        ++i_;
        return out;
      }
      if (peek() < '0' || peek() > '9') fail("expected a size in the shape");
      std::uint64_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        v = v * 10 + static_cast<std::uint64_t>(peek() - '0');
        if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
          fail("absurd size in the shape");
        }
        ++i_;
      }
      if (peek() == 'L') ++i_;  // Python 2 longs
      out.push_back(static_cast<std::int64_t>(v));
      if (out.size() > kMaxRank) fail("more than " + std::to_string(kMaxRank) + " dimensions");
      skip_ws();
      if (peek() == ',') {
        ++i_;
      } else if (peek() != ')') {
        fail("expected ',' or ')' in the shape");
      }
      if (out.size() == 1 && peek() == ')' && s_[i_ - 1] != ',') {
        // "(5)" is an int in Python, not a tuple; NumPy always writes "(5,)".
        fail("a 1-d shape must be written (n,)");
      }
    }
  }

  std::string_view s_;
  const std::string& file_;
  std::size_t i_ = 0;
};

// The bytes parse() reads before the data: magic, version, header length and header (the
// first 12 alone when the length is bad, which parse() then reports).
std::uint64_t head_length(std::span<const std::byte> first, std::uint64_t size) {
  const auto* b = reinterpret_cast<const unsigned char*>(first.data());
  if (first.size() < 12 || std::memcmp(b, kMagic, sizeof(kMagic)) != 0 || b[6] < 1 || b[6] > 3 ||
      b[7] != 0) {
    return 12;
  }
  const std::uint64_t start = b[6] == 1 ? 10 : 12;
  const std::uint64_t len = b[6] == 1
                                ? b[8] | (unsigned{b[9]} << 8)
                                : b[8] | (unsigned{b[9]} << 8) | (std::uint64_t{b[10]} << 16) |
                                      (std::uint64_t{b[11]} << 24);
  return len <= size - start ? start + len : 12;
}

// head: the file's first bytes read apart from f (FileBytes::open), or empty; the header is
// parsed from it when it holds the header, so that no page of a mapping is touched before the
// data.
Tensor parse(const std::shared_ptr<const FileBytes>& f, std::span<const std::byte> head,
             Access access) {
  const std::string& file = f->path();
  const std::size_t size = f->size();
  const auto* b = reinterpret_cast<const unsigned char*>(
      detail::io::file_prefix(*f, head, std::min<std::size_t>(size, 12)));
  if (size < 10) {
    throw FormatError("npy: " + file + ": truncated: " + std::to_string(size) +
                      " bytes, shorter than the magic and version");
  }
  if (std::memcmp(b, kMagic, sizeof(kMagic)) != 0) {
    throw FormatError("npy: " + file + ": bad magic (not a .npy file)");
  }
  const unsigned major = b[6];
  const unsigned minor = b[7];
  if (major < 1 || major > 3 || minor != 0) {
    throw FormatError("npy: " + file + ": unsupported version " + std::to_string(major) + "." +
                      std::to_string(minor) + " (1.0, 2.0 and 3.0 are)");
  }
  std::size_t header_start;
  std::uint64_t header_len;
  if (major == 1) {
    header_start = 10;
    header_len = b[8] | (unsigned{b[9]} << 8);
  } else {
    header_start = 12;
    if (size < 12) throw FormatError("npy: " + file + ": truncated in the header length");
    header_len =
        b[8] | (unsigned{b[9]} << 8) | (std::uint64_t{b[10]} << 16) | (std::uint64_t{b[11]} << 24);
  }
  if (header_len > size - header_start) {
    throw FormatError("npy: " + file + ": header length " + std::to_string(header_len) +
                      " exceeds the " + std::to_string(size - header_start) +
                      " bytes that follow it");
  }
  const std::string_view text(
      reinterpret_cast<const char*>(detail::io::file_prefix(*f, head, header_start + header_len)) +
          header_start,
      static_cast<std::size_t>(header_len));
  const Header h = HeaderParser(text, file).parse();
  const std::size_t data_start = header_start + static_cast<std::size_t>(header_len);
  const std::uint64_t data_size = size - data_start;
  const std::uint64_t elem = element_size(h.dtype);
  // Saturating product: a count past what 64-bit byte sizes hold cannot match the file.
  const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() / elem;
  std::uint64_t numel = 1;
  bool zero = false;
  bool too_big = false;
  for (std::int64_t s : h.shape) {
    const auto u = static_cast<std::uint64_t>(s);
    if (u == 0) {
      zero = true;
    } else if (!too_big) {
      if (numel > limit / u) {
        too_big = true;
      } else {
        numel *= u;
      }
    }
  }
  if (zero) {
    numel = 0;
    too_big = false;
  }
  if (too_big || numel * elem != data_size) {
    throw FormatError("npy: " + file + ": shape " + shape_to_string(h.shape) + " " +
                      std::string(dtype_name(h.dtype)) + " needs " +
                      (too_big ? std::string("more bytes than 64 bits can count")
                               : std::to_string(numel * elem) + " bytes") +
                      ", the file has " + std::to_string(data_size) + " after the header");
  }
  return detail::io::make_tensor(f, f->data() + data_start, h.shape, h.dtype, access);
}

const char* descr_of(DType dtype) {
  switch (dtype) {
    case DType::kFloat64:
      return "<f8";
    case DType::kFloat32:
      return "<f4";
    case DType::kFloat16:
      return "<f2";
    case DType::kInt64:
      return "<i8";
    case DType::kInt32:
      return "<i4";
    case DType::kInt8:
      return "|i1";
    case DType::kUInt8:
      return "|u1";
    case DType::kBFloat16:
      break;
  }
  return nullptr;
}

}  // namespace

Tensor read_npy(const std::string& path, Access access) {
  std::vector<std::byte> head;
  const auto f = FileBytes::open(path, "read_npy", head_length, &head);
  return parse(f, head, access);
}

Tensor parse_npy(std::span<const std::byte> bytes, const std::string& name) {
  return parse(FileBytes::borrow(bytes, name), {}, Access::kCopy);
}

void write_npy(const std::string& path, const Tensor& t) {
  if (!t.defined()) throw ValueError("write_npy: the tensor is undefined");
  const char* descr = descr_of(t.dtype());
  if (descr == nullptr) {
    throw ValueError("write_npy: NumPy has no " + std::string(dtype_name(t.dtype())) +
                     " dtype (write safetensors, or convert with Tensor::to)");
  }
  std::string shape = "(";
  for (std::size_t d = 0; d < t.shape().size(); ++d) {
    shape += std::to_string(t.shape()[d]) + (t.shape().size() == 1 ? "," : "");
    if (d + 1 < t.shape().size()) shape += ", ";
  }
  shape += ")";
  std::string dict =
      "{'descr': '" + std::string(descr) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const bool v2 = dict.size() + 1 + 10 > 65535;
  const std::size_t prefix = v2 ? 12 : 10;
  // Pad with spaces and end with '\n' so that the data starts at a multiple of 64.
  const std::size_t total = (prefix + dict.size() + 1 + 63) / 64 * 64;
  dict.append(total - prefix - dict.size() - 1, ' ');
  dict.push_back('\n');
  std::string head(kMagic, sizeof(kMagic));
  head.push_back(static_cast<char>(v2 ? 2 : 1));
  head.push_back(0);
  const std::size_t n = dict.size();
  for (std::size_t i = 0; i < (v2 ? 4u : 2u); ++i)
    head.push_back(static_cast<char>((n >> (8 * i)) & 0xffu));
  detail::io::AtomicWriter w(path, "write_npy");
  w.write(head);
  w.write(dict);
  w.write(t.raw_data(), t.nbytes());
  w.commit();
}

}  // namespace emb::io
