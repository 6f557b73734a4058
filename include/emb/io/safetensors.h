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
//
// Two interfaces share the format and its one parser: save_safetensors / load_safetensors (model
// files of the emb tool: strict, the dtypes above, tensors covering the data exactly), and
// read_safetensors / write_safetensors (table files, docs/FORMATS.md: also I8 and U8, memory
// mapping, gaps allowed). load_safetensors applies every check of read_safetensors, then its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "emb/io/access.h"
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

/// Reads a file save_safetensors (or any safetensors writer using the dtypes above) wrote: the
/// checks of read_safetensors (header limits, no duplicate names, ...), then the model file's
/// (dtypes above only, data covered without holes), the tensors copied.
/// Everything in the header is checked against the file size before any tensor is allocated.
/// Throws IoError (cannot open or read), FormatError (truncated file, header too large or not
/// JSON, unknown dtype, bad shape, offsets out of the data or with holes or overlaps, sizes
/// that disagree), naming the file and the tensor.
Safetensors load_safetensors(const std::string& path);

// ---------------------------------------------------------------------------------------------
// Table files (docs/FORMATS.md)

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
