// The safetensors parser shared by the table reader (read_safetensors) and the model-file
// reader (load_safetensors).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "emb/io/safetensors.h"
#include "io/file_io.h"

namespace emb::detail::io {

/// Where each tensor's bytes lie in the data section (in the order of TensorFile::tensors).
struct SafetensorsLayout {
  struct Range {
    std::uint64_t begin;
    std::uint64_t end;
  };
  std::vector<Range> ranges;
  std::uint64_t data_size = 0;
};

/// Parses and checks a whole safetensors file (the checks of read_safetensors); fills layout
/// when given. Throws FormatError.
emb::io::TensorFile parse_safetensors_file(const std::shared_ptr<const FileBytes>& f,
                                           emb::io::Access access, SafetensorsLayout* layout);

}  // namespace emb::detail::io
