// emb/quant.h — row-wise quantized tables (FBGEMM's fused row layout): 4x (int8) and up to 8x
// (int4) smaller than float32, looked up and pooled without dequantizing the whole table.
//
// Row layout (each row stands alone; see docs/FORMATS.md):
//   kInt8  [dim bytes q] [float32 scale] [float32 bias]                 row_bytes = dim + 8
//   kInt4  [ceil(dim/2) bytes, element 2j in the low nibble of byte j,
//           2j+1 in the high one] [float16 scale] [float16 bias]         row_bytes = ceil(dim/2) +
//           4
// value = float(q) * scale + bias (float32 multiply, then add).
//
// Quantizing a row with min m and max M (FBGEMM's rules):
//   kInt8  scale = (M - m) / 255, bias = m, q = rint((x - m) * 255 / (M - m + 1e-8))
//   kInt4  bias = half(m); scale = half((M - bias) / 15) (1 when M == bias or it rounds to 0),
//          q = clamp(rint((x - bias) / scale), 0, 15)
// Error per element: at most half a step (scale / 2) plus the rounding of the stored scale and
// bias (float16 for int4: 15 * |scale error| + |bias error|), plus float32 rounding.
//
//   emb::QuantizedTable q = emb::quantize_rowwise(weight, emb::QuantType::kInt8);
//   emb::Tensor out = emb::quantized_embedding_bag(ids, q, offsets,
//                         emb::EmbeddingBagFuncOptions().mode(emb::EmbeddingBagMode::kSum));
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "emb/embedding_bag.h"
#include "emb/tensor.h"

namespace emb {

enum class QuantType : std::uint8_t { kInt8, kInt4 };

/// "int8", "int4".
const char* quant_type_name(QuantType type);

/// Bytes of one quantized row: kInt8 -> dim + 8, kInt4 -> ceil(dim / 2) + 4.
std::int64_t quantized_row_bytes(QuantType type, std::int64_t dim);

/// A quantized table: data [rows, quantized_row_bytes(type, dim)] uint8 (owning, or a view of a
/// mapped file).
struct QuantizedTable {
  Tensor data;
  std::int64_t dim = 0;
  QuantType type = QuantType::kInt8;

  std::int64_t rows() const { return data.defined() ? data.size(0) : 0; }
  /// Checks data against type and dim; throws ValueError.
  void validate(const char* op) const;
};

/// Quantizes every row of a floating table.
///   weight [rows, dim] float32|float64|float16|bfloat16 -> QuantizedTable
/// Throws ValueError (not 2-D floating, a NaN or infinite value, for kInt4 a row whose bias or
/// scale does not fit float16).
QuantizedTable quantize_rowwise(const Tensor& weight, QuantType type);

/// The float32 table the quantized one stands for: [rows, dim].
Tensor dequantize(const QuantizedTable& table);

/// Looks rows up: out[i..] = dequantized row input[i..].
///   input [*] int32|int64 -> [*, dim] float32. Throws as embedding() does.
Tensor quantized_embedding(const Tensor& input, const QuantizedTable& table);

/// Pools bags of quantized rows exactly as embedding_bag() pools the dequantized float32 table
/// (sum, mean, max; per_sample_weights float32 with mode sum; padding_idx;
/// include_last_offset): the result equals embedding_bag(input, dequantize(table), ...) bit for
/// bit, without building the dequantized table.
///   input [n] | [B, N], offsets [B] | [B + 1] -> [B, dim] float32
/// Throws as embedding_bag() does, and NotImplementedError for max_norm (a quantized table
/// cannot be renormalized in place).
Tensor quantized_embedding_bag(const Tensor& input, const QuantizedTable& table,
                               const Tensor& offsets = {},
                               const EmbeddingBagFuncOptions& options = {},
                               const Tensor& per_sample_weights = {});

/// The safetensors metadata entry that marks tensor `name` as a quantized table:
/// {"emb.quant.<name>", "int8:<dim>"} (or "int4:<dim>").
std::pair<std::string, std::string> quantized_metadata(const std::string& name,
                                                       const QuantizedTable& table);
/// The quantized table a file holds under `name`, if its metadata marks one. Throws FormatError
/// (a malformed mark, a tensor that does not match it; `file` names the file).
std::optional<QuantizedTable> quantized_from_metadata(
    const Tensor& data, const std::string& name, const std::map<std::string, std::string>& metadata,
    const std::string& file);

}  // namespace emb
