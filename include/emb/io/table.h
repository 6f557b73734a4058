// emb/io/table.h — one embedding table from (or to) any supported file, whatever its format:
// what from_pretrained and the table tools (info, convert, lookup, neighbors) start from.
//
//   emb::io::Table t = emb::io::load_table("GoogleNews-vectors-negative300.bin");
//   emb::Embedding m = emb::Embedding::from_pretrained(t.weight);
//   emb::io::save_table("table.safetensors", t);        // the format follows the extension
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "emb/io/access.h"
#include "emb/tensor.h"

namespace emb::io {

enum class Format : std::uint8_t {
  kSafetensors,     // .safetensors
  kNpy,             // .npy
  kWord2VecBinary,  // .bin
  kTextVectors,     // .vec, .txt: word2vec text / fastText .vec ("<count> <dim>" header)
  kGloVe,           // .glove, or text without the header (reading detects either)
};

/// "safetensors", "npy", "word2vec-binary", "text", "glove".
std::string_view format_name(Format format);
/// Parses format_name()'s names (and "word2vec", "vec", "bin", "txt"); throws ValueError.
Format parse_format(std::string_view name);

/// The format of a file to write, from its extension: .safetensors, .npy, .bin, .vec/.txt,
/// .glove. Throws ValueError for another extension.
Format format_from_extension(const std::string& path);
/// The format of an existing file, from its first bytes (NumPy's magic, a safetensors header
/// length followed by '{', a "<count> <dim>" line followed by binary or text data, else text
/// without a header). Throws IoError when the file cannot be read.
Format detect_format(const std::string& path);

/// A table and what came with it.
///   weight    [rows, dim] (the file's dtype; word vectors are float32)
///   vocab     the word of each row, empty for formats without one
///   name      the tensor name the weight came from (safetensors), else ""
///   tensors   every tensor of a safetensors file (the weight included)
///   metadata  a safetensors file's __metadata__
struct Table {
  Tensor weight;
  std::vector<std::string> vocab;
  std::string name;
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, std::string> metadata;
  Format format = Format::kSafetensors;
};

struct LoadTableOptions {
  /// kMap: safetensors and .npy tables are viewed read-only in place (see access.h); text and
  /// word2vec binary files are always read into memory.
  Access access = Access::kCopy;
  /// kMap only: the rows will be read in random order (lookups, bags), not scanned. The
  /// weight's mapping is advised so (madvise MADV_RANDOM): looking up a row that is not in
  /// memory reads its own pages only, not the kernel's read-around window around them (the
  /// device's read_ahead_kb: 128 KiB by default, megabytes on some virtual disks). A scan of
  /// such a table (a copy, a search over all rows) then reads it page by page, far slower.
  bool random_access = false;
  /// The safetensors tensor to use as the weight; "" picks "weight", else the only 2-D tensor
  /// (a name ending in ".weight" when several are 2-D and exactly one does).
  std::string tensor;
};

/// Loads a table from a file of any supported format (detect_format). Throws IoError,
/// FormatError (a bad file), ValueError (no 2-D tensor, an ambiguous or missing name).
Table load_table(const std::string& path, const LoadTableOptions& options = {});

/// Writes a table in the format its extension names (or the one given). safetensors keeps
/// table.tensors when it holds the weight (else writes the weight as "weight") and the
/// metadata; word-vector formats need a vocabulary (or use "0", "1", ... when vocab is
/// empty) and float data. Throws ValueError (a table the format cannot hold) or IoError.
void save_table(const std::string& path, const Table& table);
void save_table(const std::string& path, const Table& table, Format format);

}  // namespace emb::io
