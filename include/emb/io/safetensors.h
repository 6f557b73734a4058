// emb/io/safetensors.h — tensors in the safetensors layout: one file, named tensors, metadata.
//
// Layout (little-endian): 8 bytes N (uint64) | N bytes of JSON header | data.
//   {"__metadata__": {"key": "value", ...},
//    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
// Offsets are relative to the start of the data and must cover it exactly, without holes or
// overlaps. dtypes: F32, F64, F16, BF16, I32, I64.
//
//   emb::io::save_safetensors("model.safetensors", {{"weight", w}}, {{"format", "mine"}});
//   emb::io::Safetensors f = emb::io::load_safetensors("model.safetensors");
//   const emb::Tensor& w2 = f.tensor("weight");
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "emb/tensor.h"

namespace emb::io {

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

/// What a safetensors file holds: its tensors (in data order) and its string metadata.
struct Safetensors {
  std::vector<NamedTensor> tensors;
  std::map<std::string, std::string> metadata;

  /// The tensor called name; throws FormatError naming the file's tensors when absent.
  const Tensor& tensor(const std::string& name) const;
  /// The metadata value of key; throws FormatError when absent.
  const std::string& meta(const std::string& key) const;
};

/// Largest JSON header load_safetensors accepts (bytes).
inline constexpr std::uint64_t kMaxSafetensorsHeader = 100u << 20;

/// Writes tensors (in the given order) and metadata to path. The file is written beside path
/// under a temporary name and renamed over path once complete, so path never holds a partial
/// file. Throws ValueError (empty, duplicate or "__metadata__" name, undefined tensor),
/// IoError (the write or the rename fails).
void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// Reads a file save_safetensors (or any safetensors writer using the dtypes above) wrote.
/// Everything in the header is checked against the file size before any tensor is allocated.
/// Throws IoError (cannot open or read), FormatError (truncated file, header too large or not
/// JSON, unknown dtype, bad shape, offsets out of the data or with holes or overlaps, sizes
/// that disagree), naming the file and the tensor.
Safetensors load_safetensors(const std::string& path);

}  // namespace emb::io
