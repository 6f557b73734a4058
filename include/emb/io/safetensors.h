// emb/io/safetensors.h — the safetensors format: several named tensors and a string metadata map.
//
// Layout: u64 little-endian N, then N bytes of UTF-8 JSON, then the data bytes:
//   {"weight": {"dtype": "F32", "shape": [10, 3], "data_offsets": [0, 120]},
//    "__metadata__": {"format": "pt"}}
// data_offsets are [begin, end) within the data bytes. See docs/FORMATS.md.
//
//   auto f = emb::io::read_safetensors("table.safetensors", emb::io::Access::kMap);
//   emb::Tensor w = f.at("weight");                 // a read-only view of the file
#pragma once

#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "emb/io/access.h"
#include "emb/tensor.h"

namespace emb::io {

/// The tensors of a file (in the order of their data) and its metadata.
struct TensorFile {
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, std::string> metadata;

  /// The tensor named name; throws ValueError listing the names there are.
  const Tensor& at(const std::string& name) const;
  bool contains(const std::string& name) const;
};

/// Reads a safetensors file (dtypes F64, F32, F16, BF16, I64, I32, I8, U8).
/// Throws IoError (cannot open) or FormatError naming the file and what is wrong: truncated
/// file, a header that is not a JSON object of tensors, an unknown dtype, a shape whose bytes
/// do not match its offsets, ranges outside the data or overlapping, duplicate names.
TensorFile read_safetensors(const std::string& path, Access access = Access::kCopy);

/// The same from bytes in memory (copied); `name` stands for the file in messages.
TensorFile parse_safetensors(std::span<const std::byte> bytes, const std::string& name);

/// Writes tensors (any emb dtype; names distinct and not "__metadata__") and metadata,
/// atomically (a temporary file renamed over path). Tensors are laid out largest element size
/// first, so every tensor is aligned for its dtype when the file is mapped.
/// Throws ValueError (duplicate or reserved names, undefined tensors) or IoError.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

/// "F32", "BF16", ... of a dtype, and back (throws FormatError for an unknown name).
const char* safetensors_dtype_name(DType dtype);

}  // namespace emb::io
