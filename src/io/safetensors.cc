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
#include "io/file_io.h"
#include "io/safetensors_internal.h"

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
  std::shared_ptr<const detail::io::FileBytes> bytes;
  try {
    bytes = detail::io::FileBytes::open(path, "load_safetensors");
  } catch (const IoError& e) {
    throw IoError(where + ": cannot open the file (" + e.what() + ")");
  }
  // The format's checks: the one safetensors parser (tensor_file.cc), tensors copied.
  detail::io::SafetensorsLayout layout;
  TensorFile f = detail::io::parse_safetensors_file(bytes, Access::kCopy, &layout);
  // A model file's own rules: its dtypes, and data covered without holes.
  std::uint64_t expected = 0;
  for (std::size_t i = 0; i < f.tensors.size(); ++i) {
    const auto& [name, t] = f.tensors[i];
    DType dtype;
    if (!dtype_from_tag(safetensors_dtype_name(t.dtype()), dtype)) {
      throw FormatError(where + ": tensor \"" + name + "\" has dtype \"" +
                        safetensors_dtype_name(t.dtype()) +
                        "\", which model files do not hold (supported: F32, F64, F16, BF16, "
                        "I32, I64)");
    }
    const auto& range = layout.ranges[i];
    if (range.begin != expected) {
      throw FormatError(where + ": tensor \"" + name + "\" starts at data byte " +
                        std::to_string(range.begin) + ", expected " + std::to_string(expected) +
                        " (the data must be covered without holes)");
    }
    expected = range.end;
  }
  if (expected != layout.data_size) {
    throw FormatError(where + ": the tensors cover " + std::to_string(expected) + " of the " +
                      std::to_string(layout.data_size) + " data bytes");
  }
  Safetensors result;
  result.metadata = std::move(f.metadata);
  for (auto& [name, t] : f.tensors) result.tensors.push_back({name, std::move(t)});
  return result;
}

}  // namespace emb::io
