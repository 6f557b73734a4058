// emb/io/npy.h — NumPy's .npy format: one array, versions 1.0, 2.0 and 3.0, C order,
// little-endian; dtypes float64, float32, float16, int64, int32, int8, uint8 (and bool read as
// uint8). See docs/FORMATS.md.
//
//   emb::Tensor w = emb::io::read_npy("weight.npy");   // np.save("weight.npy", w)
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "emb/io/access.h"
#include "emb/tensor.h"

namespace emb::io {

/// Reads an .npy file. Throws IoError (cannot open) or FormatError naming the file and what is
/// wrong (magic, version, header syntax, Fortran order, big-endian or unsupported dtype, a
/// shape whose bytes do not match the file's size).
Tensor read_npy(const std::string& path, Access access = Access::kCopy);

/// The same from bytes in memory (copied); `name` stands for the file in messages.
Tensor parse_npy(std::span<const std::byte> bytes, const std::string& name);

/// Writes t as .npy version 1.0 (2.0 when the header needs it), atomically. bfloat16 has no
/// NumPy dtype: throws ValueError (use safetensors or convert with Tensor::to). Throws IoError.
void write_npy(const std::string& path, const Tensor& t);

}  // namespace emb::io
