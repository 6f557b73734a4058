#include "emb/io/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "emb/error.h"

namespace emb::io {

namespace {

using Json = nlohmann::json;

constexpr const char* kMetadataKey = "__metadata__";

const char* dtype_tag(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "F32";
    case DType::kFloat64:
      return "F64";
    case DType::kFloat16:
      return "F16";
    case DType::kBFloat16:
      return "BF16";
    case DType::kInt32:
      return "I32";
    case DType::kInt64:
      return "I64";
    case DType::kInt8:
    case DType::kUInt8:
      break;  // refused by save_safetensors (write_safetensors writes them)
  }
  return "?";
}

bool dtype_from_tag(const std::string& tag, DType& out) {
  for (DType d : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16,
                  DType::kInt32, DType::kInt64}) {
    if (tag == dtype_tag(d)) {
      out = d;
      return true;
    }
  }
  return false;
}

void put_u64_le(std::uint64_t v, char* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

std::uint64_t get_u64_le(const unsigned char* in) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | in[i];
  return v;
}

// Tensor data are written in the machine's byte order; the format is little-endian.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes little-endian");

}  // namespace

const Tensor& Safetensors::tensor(const std::string& name) const {
  for (const NamedTensor& t : tensors) {
    if (t.name == name) return t.tensor;
  }
  std::string names;
  for (const NamedTensor& t : tensors) names += (names.empty() ? "" : ", ") + t.name;
  throw FormatError("safetensors: no tensor named \"" + name +
                    "\" (the file has: " + (names.empty() ? "none" : names) + ")");
}

const std::string& Safetensors::meta(const std::string& key) const {
  auto it = metadata.find(key);
  if (it == metadata.end()) {
    throw FormatError("safetensors: no metadata entry \"" + key + "\"");
  }
  return it->second;
}

void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  std::set<std::string> names;
  std::uint64_t offset = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const NamedTensor& t = tensors[i];
    if (t.name.empty() || t.name == kMetadataKey) {
      throw ValueError("save_safetensors: tensors[" + std::to_string(i) + "] has the name \"" +
                       t.name + "\", which is reserved or empty");
    }
    if (!names.insert(t.name).second) {
      throw ValueError("save_safetensors: tensor name \"" + t.name + "\" appears twice");
    }
    if (!t.tensor.defined()) {
      throw ValueError("save_safetensors: tensor \"" + t.name + "\" is undefined");
    }
    if (t.tensor.dtype() == DType::kInt8 || t.tensor.dtype() == DType::kUInt8) {
      throw ValueError("save_safetensors: tensor \"" + t.name + "\" has dtype " +
                       std::string(dtype_name(t.tensor.dtype())) +
                       ", which model files do not hold (write_safetensors writes it)");
    }
    const std::uint64_t bytes = t.tensor.nbytes();
    header[t.name] = {{"dtype", dtype_tag(t.tensor.dtype())},
                      {"shape", t.tensor.shape()},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data start 8-byte aligned

  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw IoError("save_safetensors: cannot create " + tmp);
    char len[8];
    put_u64_le(text.size(), len);
    out.write(len, 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const NamedTensor& t : tensors) {
      out.write(static_cast<const char*>(t.tensor.raw_data()),
                static_cast<std::streamsize>(t.tensor.nbytes()));
    }
    out.flush();
    if (!out) {
      out.close();
      std::remove(tmp.c_str());
      throw IoError("save_safetensors: writing " + tmp + " failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(tmp.c_str());
    throw IoError("save_safetensors: cannot rename " + tmp + " to " + path + ": " + reason);
  }
}

Safetensors load_safetensors(const std::string& path) {
  const std::string where = "load_safetensors: " + path;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(where + ": cannot open the file");
  in.seekg(0, std::ios::end);
  const std::streamoff end = in.tellg();
  in.seekg(0, std::ios::beg);
  if (end < 0) throw IoError(where + ": cannot read the file size");
  const std::uint64_t file_size = static_cast<std::uint64_t>(end);
  if (file_size < 8) {
    throw FormatError(where + ": " + std::to_string(file_size) +
                      " bytes is too short for a safetensors file (8-byte header length)");
  }
  unsigned char len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  if (!in) throw IoError(where + ": cannot read the header length");
  const std::uint64_t header_len = get_u64_le(len_bytes);
  if (header_len > file_size - 8) {
    throw FormatError(where + ": header length " + std::to_string(header_len) +
                      " exceeds the file (" + std::to_string(file_size) +
                      " bytes): truncated or not a safetensors file");
  }
  if (header_len > kMaxSafetensorsHeader) {
    throw FormatError(where + ": header length " + std::to_string(header_len) +
                      " exceeds the limit of " + std::to_string(kMaxSafetensorsHeader) + " bytes");
  }
  std::string text(header_len, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_len));
  if (!in) throw IoError(where + ": cannot read the header");
  const std::uint64_t data_size = file_size - 8 - header_len;

  Json header = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    throw FormatError(where + ": the header is not a JSON object");
  }

  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    std::uint64_t begin, end;
  };
  Safetensors result;
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const Json& v = it.value();
    if (name == kMetadataKey) {
      if (!v.is_object()) throw FormatError(where + ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) {
          throw FormatError(where + ": __metadata__[\"" + m.key() + "\"] is not a string");
        }
        result.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string what = where + ": tensor \"" + name + "\"";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets")) {
      throw FormatError(what + " lacks dtype, shape or data_offsets");
    }
    Entry e{name, DType::kFloat32, {}, 0, 0};
    if (!v["dtype"].is_string() || !dtype_from_tag(v["dtype"].get<std::string>(), e.dtype)) {
      throw FormatError(what + " has dtype " + v["dtype"].dump() +
                        " (supported: F32, F64, F16, BF16, I32, I64)");
    }
    const Json& shape = v["shape"];
    if (!shape.is_array() || shape.size() > 64) {
      throw FormatError(what + " has shape " + shape.dump() + " (an array of sizes expected)");
    }
    for (const Json& s : shape) {
      if (!s.is_number_unsigned() ||
          s.get<std::uint64_t>() >
              static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        throw FormatError(what + " has shape " + shape.dump() + " (sizes must be integers >= 0)");
      }
      e.shape.push_back(static_cast<std::int64_t>(s.get<std::uint64_t>()));
    }
    const Json& offsets = v["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned()) {
      throw FormatError(what + " has data_offsets " + offsets.dump() + " ([begin, end] expected)");
    }
    e.begin = offsets[0].get<std::uint64_t>();
    e.end = offsets[1].get<std::uint64_t>();
    if (e.begin > e.end || e.end > data_size) {
      throw FormatError(what + " has data_offsets [" + std::to_string(e.begin) + ", " +
                        std::to_string(e.end) + "] outside the " + std::to_string(data_size) +
                        " bytes of data: truncated or corrupted file");
    }
    std::int64_t numel = 0;
    try {
      numel = checked_numel(e.shape, "load_safetensors");
    } catch (const ValueError&) {
      throw FormatError(what + " has shape " + shape.dump() + ", whose size overflows");
    }
    const std::uint64_t bytes = e.end - e.begin;
    if (static_cast<std::uint64_t>(numel) > bytes ||
        static_cast<std::uint64_t>(numel) * element_size(e.dtype) != bytes) {
      throw FormatError(what + " has shape " + shape.dump() + " of " + dtype_tag(e.dtype) +
                        ", which does not fill its " + std::to_string(bytes) + " bytes");
    }
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  std::uint64_t expected = 0;
  for (const Entry& e : entries) {
    if (e.begin != expected) {
      throw FormatError(where + ": tensor \"" + e.name + "\" starts at data byte " +
                        std::to_string(e.begin) + ", expected " + std::to_string(expected) +
                        " (the data must be covered without holes or overlaps)");
    }
    expected = e.end;
  }
  if (expected != data_size) {
    throw FormatError(where + ": the tensors cover " + std::to_string(expected) + " of the " +
                      std::to_string(data_size) + " data bytes");
  }
  // Every size is now bounded by the file size: allocate and read.
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    in.seekg(static_cast<std::streamoff>(8 + header_len + e.begin));
    in.read(static_cast<char*>(t.raw_data()), static_cast<std::streamsize>(e.end - e.begin));
    if (!in) throw IoError(where + ": cannot read the data of tensor \"" + e.name + "\"");
    result.tensors.push_back({e.name, std::move(t)});
  }
  return result;
}

}  // namespace emb::io
