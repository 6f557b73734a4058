// safetensors: u64 header length, JSON header, data bytes. Every size, offset and dtype in the
// header is checked against the file before anything is allocated. The one parser of the
// format: read_safetensors / parse_safetensors (tables) and load_safetensors (model files, which
// add their own rules in safetensors.cc) both go through parse().
#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <vector>

#include "emb/io/safetensors.h"
#include "io/file_io.h"
#include "io/reader_common.h"
#include "io/safetensors_internal.h"

namespace emb::io {

namespace {

using json = nlohmann::json;
using detail::io::FileBytes;

constexpr std::uint64_t kMaxHeader = kMaxSafetensorsHeader;  // the reference implementation's
constexpr std::size_t kMaxRank = 32;

struct DTypeName {
  const char* name;
  DType dtype;
};
constexpr DTypeName kDTypes[] = {
    {"F64", DType::kFloat64},   {"F32", DType::kFloat32}, {"F16", DType::kFloat16},
    {"BF16", DType::kBFloat16}, {"I64", DType::kInt64},   {"I32", DType::kInt32},
    {"I8", DType::kInt8},       {"U8", DType::kUInt8},
};

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  std::uint64_t begin;
  std::uint64_t end;
};

std::uint64_t load_u64_le(const std::byte* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(p[i]);
  return v;
}

// Parses the header JSON; rejects duplicate keys at any level and nesting deeper than the
// format uses.
json parse_header(std::string_view text, const std::string& file) {
  std::vector<std::set<std::string>> open_objects;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth > 3) {
          throw FormatError("safetensors: " + file + ": header nests deeper than the format");
        }
        if (event == json::parse_event_t::object_start) open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() &&
            !open_objects.back().insert(parsed.get<std::string>()).second) {
          throw FormatError("safetensors: " + file + ": duplicate name \"" +
                            parsed.get<std::string>() + "\" in the header");
        }
        break;
      default:
        break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), callback);
  } catch (const json::exception& e) {
    throw FormatError("safetensors: " + file +
                      ": the header is not a JSON object: not valid JSON (" + e.what() + ")");
  }
}

std::uint64_t as_u64(const json& v, const std::string& file, const std::string& what) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0) {
    return static_cast<std::uint64_t>(v.get<std::int64_t>());
  }
  throw FormatError("safetensors: " + file + ": " + what + " is " + v.dump() +
                    ", not a non-negative integer");
}

Entry parse_entry(const std::string& name, const json& v, const std::string& file,
                  std::uint64_t data_size) {
  const std::string where = "tensor \"" + name + "\"";
  if (!v.is_object()) {
    throw FormatError("safetensors: " + file + ": " + where + " is " + std::string(v.type_name()) +
                      ", not an object");
  }
  for (const auto& [key, _] : v.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      throw FormatError("safetensors: " + file + ": " + where + " has an unknown field \"" + key +
                        "\"");
    }
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!v.contains(key)) {
      throw FormatError("safetensors: " + file + ": " + where + " lacks \"" + key + "\"");
    }
  }
  Entry e;
  e.name = name;
  const json& dt = v["dtype"];
  if (!dt.is_string()) {
    throw FormatError("safetensors: " + file + ": " + where + ": dtype is " + dt.dump());
  }
  const std::string dts = dt.get<std::string>();
  const auto it = std::find_if(std::begin(kDTypes), std::end(kDTypes),
                               [&](const DTypeName& d) { return dts == d.name; });
  if (it == std::end(kDTypes)) {
    throw FormatError("safetensors: " + file + ": " + where + ": unsupported dtype \"" + dts +
                      "\" (supported: F64, F32, F16, BF16, I64, I32, I8, U8)");
  }
  e.dtype = it->dtype;
  const json& shape = v["shape"];
  if (!shape.is_array() || shape.size() > kMaxRank) {
    throw FormatError("safetensors: " + file + ": " + where + ": shape " + shape.dump() +
                      " is not an array of at most " + std::to_string(kMaxRank) + " sizes");
  }
  const json& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2) {
    throw FormatError("safetensors: " + file + ": " + where + ": data_offsets " + off.dump() +
                      " is not [begin, end]");
  }
  e.begin = as_u64(off[0], file, where + " data_offsets[0]");
  e.end = as_u64(off[1], file, where + " data_offsets[1]");
  if (e.begin > e.end || e.end > data_size) {
    throw FormatError("safetensors: " + file + ": " + where + ": data_offsets [" +
                      std::to_string(e.begin) + ", " + std::to_string(e.end) +
                      "] lie outside the " + std::to_string(data_size) +
                      " data bytes (truncated or corrupted file)");
  }
  // The element count, bounded by the bytes the offsets give (no overflow, no absurd size).
  const std::uint64_t elem = element_size(e.dtype);
  // Saturating product: a count past what 64-bit byte sizes hold cannot match any offsets.
  const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() / elem;
  std::uint64_t numel = 1;
  bool zero = false;
  bool too_big = false;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    const std::uint64_t s = as_u64(shape[d], file, where + " shape[" + std::to_string(d) + "]");
    if (s > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      throw FormatError("safetensors: " + file + ": " + where + ": absurd size " +
                        std::to_string(s) + " in shape " + shape.dump());
    }
    e.shape.push_back(static_cast<std::int64_t>(s));
    if (s == 0) {
      zero = true;
    } else if (!too_big) {
      if (numel > limit / s) {
        too_big = true;
      } else {
        numel *= s;
      }
    }
  }
  if (zero) {
    numel = 0;
    too_big = false;
  }
  if (too_big) {
    throw FormatError("safetensors: " + file + ": " + where + ": shape " + shape.dump() + " " +
                      dts + " needs more bytes than 64 bits can count (data_offsets give " +
                      std::to_string(e.end - e.begin) + ")");
  }
  if (numel * elem != e.end - e.begin) {
    throw FormatError("safetensors: " + file + ": " + where + ": shape " + shape.dump() + " " +
                      dts + " needs " + std::to_string(numel * elem) +
                      " bytes, data_offsets give " + std::to_string(e.end - e.begin) +
                      " (the shape does not fill its data_offsets)");
  }
  return e;
}

// The bytes parse() reads before the data: the length and the header (8 alone when the length
// is bad, which parse() then reports).
std::uint64_t head_length(std::span<const std::byte> first, std::uint64_t size) {
  if (first.size() < 8) return 8;
  const std::uint64_t n = load_u64_le(first.data());
  return n <= size - 8 && n <= kMaxHeader ? 8 + n : 8;
}

// head: the file's first bytes read apart from f (FileBytes::open), or empty; the header is
// parsed from it when it holds the header, so that no page of a mapping is touched before the
// tensors' own.
TensorFile parse(const std::shared_ptr<const FileBytes>& f, std::span<const std::byte> head,
                 Access access, detail::io::SafetensorsLayout* layout) {
  const std::string& file = f->path();
  const std::size_t size = f->size();
  if (size < 8) {
    throw FormatError("safetensors: " + file + ": truncated: " + std::to_string(size) +
                      " bytes is too short, the header length alone needs 8");
  }
  const std::uint64_t n = load_u64_le(detail::io::file_prefix(*f, head, 8));
  if (n > size - 8) {
    throw FormatError("safetensors: " + file + ": header length " + std::to_string(n) +
                      " exceeds the file: only " + std::to_string(size - 8) + " bytes follow it");
  }
  if (n > kMaxHeader) {
    throw FormatError("safetensors: " + file + ": header length " + std::to_string(n) +
                      " exceeds the format's limit of " + std::to_string(kMaxHeader));
  }
  const std::string_view text(
      reinterpret_cast<const char*>(detail::io::file_prefix(*f, head, 8 + n)) + 8,
      static_cast<std::size_t>(n));
  const json header = parse_header(text, file);
  if (!header.is_object()) {
    throw FormatError("safetensors: " + file + ": the header is " +
                      std::string(header.type_name()) + ", not a JSON object");
  }
  const std::uint64_t data_size = size - 8 - n;
  const std::byte* data = f->data() + 8 + n;
  TensorFile out;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) {
        throw FormatError("safetensors: " + file + ": __metadata__ is " +
                          std::string(value.type_name()) + ", not an object of strings");
      }
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) {
          throw FormatError("safetensors: " + file + ": __metadata__ \"" + mk + "\" is " +
                            mv.dump() + ", not a string");
        }
        out.metadata.emplace(mk, mv.get<std::string>());
      }
      continue;
    }
    entries.push_back(parse_entry(key, value, file, data_size));
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (std::size_t i = 1; i < entries.size(); ++i) {
    const Entry& a = entries[i - 1];
    const Entry& b = entries[i];
    if (b.begin < a.end) {
      throw FormatError("safetensors: " + file + ": tensors \"" + a.name + "\" [" +
                        std::to_string(a.begin) + ", " + std::to_string(a.end) + ") and \"" +
                        b.name + "\" [" + std::to_string(b.begin) + ", " + std::to_string(b.end) +
                        ") overlap");
    }
  }
  if (layout) {
    layout->data_size = data_size;
    layout->ranges.clear();
    for (const Entry& e : entries) layout->ranges.push_back({e.begin, e.end});
  }
  // Everything checked: build the tensors.
  for (const Entry& e : entries) {
    const std::byte* p = data + e.begin;
    out.tensors.emplace_back(e.name, detail::io::make_tensor(f, p, e.shape, e.dtype, access));
  }
  return out;
}

}  // namespace

const Tensor& TensorFile::at(const std::string& name) const {
  for (const auto& [n, t] : tensors) {
    if (n == name) return t;
  }
  std::string have;
  for (const auto& [n, t] : tensors) have += (have.empty() ? "\"" : ", \"") + n + "\"";
  throw ValueError("TensorFile::at: no tensor named \"" + name + "\" (the file has " +
                   (have.empty() ? std::string("none") : have) + ")");
}

bool TensorFile::contains(const std::string& name) const {
  return std::any_of(tensors.begin(), tensors.end(),
                     [&](const auto& p) { return p.first == name; });
}

const char* safetensors_dtype_name(DType dtype) {
  for (const DTypeName& d : kDTypes) {
    if (d.dtype == dtype) return d.name;
  }
  return "?";
}

TensorFile read_safetensors(const std::string& path, Access access) {
  std::vector<std::byte> head;
  const auto f = FileBytes::open(path, "read_safetensors", head_length, &head);
  return parse(f, head, access, nullptr);
}

TensorFile parse_safetensors(std::span<const std::byte> bytes, const std::string& name) {
  return parse(FileBytes::borrow(bytes, name), {}, Access::kCopy, nullptr);
}

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const char* op = "write_safetensors";
  std::set<std::string> names;
  for (const auto& [name, t] : tensors) {
    if (!t.defined()) throw ValueError(std::string(op) + ": tensor \"" + name + "\" is undefined");
    if (name == "__metadata__") {
      throw ValueError(std::string(op) + ": \"__metadata__\" is reserved, not a tensor name");
    }
    if (!names.insert(name).second) {
      throw ValueError(std::string(op) + ": duplicate tensor name \"" + name + "\"");
    }
    if (!detail::io::is_valid_utf8(name)) {
      throw ValueError(std::string(op) + ": tensor name is not valid UTF-8");
    }
  }
  for (const auto& [k, v] : metadata) {
    if (!detail::io::is_valid_utf8(k) || !detail::io::is_valid_utf8(v)) {
      throw ValueError(std::string(op) + ": metadata key or value is not valid UTF-8");
    }
  }
  // Largest elements first: each tensor starts at a multiple of its element size.
  std::vector<std::size_t> order(tensors.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return element_size(tensors[a].second.dtype()) > element_size(tensors[b].second.dtype());
  });
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  std::uint64_t offset = 0;
  for (std::size_t i : order) {
    const auto& [name, t] = tensors[i];
    nlohmann::ordered_json e;
    e["dtype"] = safetensors_dtype_name(t.dtype());
    e["shape"] = t.shape();
    e["data_offsets"] = {offset, offset + t.nbytes()};
    offset += t.nbytes();
    header[name] = e;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  detail::io::AtomicWriter w(path, op);
  std::byte len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<std::byte>((text.size() >> (8 * i)) & 0xffu);
  w.write(len, 8);
  w.write(text);
  for (std::size_t i : order) w.write(tensors[i].second.raw_data(), tensors[i].second.nbytes());
  w.commit();
}

}  // namespace emb::io

namespace emb::detail::io {

emb::io::TensorFile parse_safetensors_file(const std::shared_ptr<const FileBytes>& f,
                                           emb::io::Access access, SafetensorsLayout* layout) {
  return emb::io::parse(f, {}, access, layout);
}

}  // namespace emb::detail::io
