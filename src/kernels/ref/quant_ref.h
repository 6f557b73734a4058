// Scalar reference kernels of row-wise quantized tables: the readable definition. Inputs are
// validated by the functional layer; kernels never throw.
//
// Bits = 8: a row is [dim q bytes][float32 scale][float32 bias].
// Bits = 4: a row is [ceil(dim/2) bytes, low nibble first][float16 scale][float16 bias].
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "emb/dtype.h"

namespace emb::detail::ref {

template <int Bits>
constexpr std::int64_t quant_data_bytes(std::int64_t dim) {
  return Bits == 8 ? dim : (dim + 1) / 2;
}

template <int Bits>
constexpr std::int64_t quant_row_bytes(std::int64_t dim) {
  return quant_data_bytes<Bits>(dim) + (Bits == 8 ? 8 : 4);
}

/// The scale and bias stored after a row's data, as float.
template <int Bits>
inline void quant_scale_bias(const std::uint8_t* row, std::int64_t dim, float& scale, float& bias) {
  const std::uint8_t* sb = row + quant_data_bytes<Bits>(dim);
  if constexpr (Bits == 8) {
    std::memcpy(&scale, sb, 4);
    std::memcpy(&bias, sb + 4, 4);
  } else {
    std::uint16_t s, b;
    std::memcpy(&s, sb, 2);
    std::memcpy(&b, sb + 2, 2);
    scale = static_cast<float>(Half::from_bits(s));
    bias = static_cast<float>(Half::from_bits(b));
  }
}

/// The stored integer of element d of a row.
template <int Bits>
inline int quant_code(const std::uint8_t* row, std::int64_t d) {
  if constexpr (Bits == 8) {
    return row[d];
  } else {
    return (row[d / 2] >> ((d % 2) * 4)) & 0xf;
  }
}

/// Element d of a row: float(q) * scale + bias (a rounded product, then a rounded sum).
template <int Bits>
inline float quant_value(const std::uint8_t* row, std::int64_t d, float scale, float bias) {
  const float prod = static_cast<float>(quant_code<Bits>(row, d)) * scale;
  return prod + bias;
}

/// Quantizes rows of finite values (checked by the caller) into out [rows, row_bytes].
///   in [rows, dim] -> out [rows, quant_row_bytes<Bits>(dim)]
template <int Bits>
void quantize_rows(const float* in, std::int64_t rows, std::int64_t dim, std::uint8_t* out) {
  const std::int64_t rb = quant_row_bytes<Bits>(dim);
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* x = in + r * dim;
    std::uint8_t* o = out + r * rb;
    std::memset(o, 0, static_cast<std::size_t>(rb));
    float lo = dim > 0 ? *std::min_element(x, x + dim) : 0.0f;
    const float hi = dim > 0 ? *std::max_element(x, x + dim) : 0.0f;
    std::uint8_t* sb = o + quant_data_bytes<Bits>(dim);
    if constexpr (Bits == 8) {
      const float range = hi - lo;
      const float scale = range / 255.0f;
      const float inverse = 255.0f / (range + 1e-8f);
      std::memcpy(sb, &scale, 4);
      std::memcpy(sb + 4, &lo, 4);
      for (std::int64_t d = 0; d < dim; ++d) {
        const long q = std::lrint((x[d] - lo) * inverse);
        o[d] = static_cast<std::uint8_t>(std::clamp(q, 0L, 255L));
      }
    } else {
      const Half bias_h(lo);
      lo = static_cast<float>(bias_h);  // the stored bias, so that codes are relative to it
      const float range = hi - lo;
      float scale = range == 0.0f ? 1.0f : range / 15.0f;
      Half scale_h(scale);
      scale = static_cast<float>(scale_h);
      if (scale == 0.0f) scale = 1.0f;  // range below float16's resolution: any scale works
      float inverse = 1.0f / scale;
      if (std::isinf(inverse)) {
        scale = 1.0f;
        inverse = 1.0f;
      }
      scale_h = Half(scale);
      std::memcpy(sb, &scale_h.bits, 2);
      std::memcpy(sb + 2, &bias_h.bits, 2);
      for (std::int64_t d = 0; d < dim; ++d) {
        const long q = std::clamp(std::lrint((x[d] - lo) * inverse), 0L, 15L);
        o[d / 2] = static_cast<std::uint8_t>(o[d / 2] | (q << ((d % 2) * 4)));
      }
    }
  }
}

/// out[k] = the dequantized row ids[k] (ids = null: every row in order).
///   table [*, row_bytes], ids [n] -> out [n, dim]
template <int Bits, typename Index>
void quant_gather_rows(const std::uint8_t* table, std::int64_t dim, const Index* ids,
                       std::int64_t n, float* out) {
  const std::int64_t rb = quant_row_bytes<Bits>(dim);
  for (std::int64_t k = 0; k < n; ++k) {
    const std::uint8_t* row = table + (ids ? static_cast<std::int64_t>(ids[k]) : k) * rb;
    float scale, bias;
    quant_scale_bias<Bits>(row, dim, scale, bias);
    for (std::int64_t d = 0; d < dim; ++d)
      out[k * dim + d] = quant_value<Bits>(row, d, scale, bias);
  }
}

/// For d < dim: o[d] = o[d] + value(d) (w == null), fma(value(d), *w, o[d]) (fused) or
/// o[d] + value(d) * *w. (restrict: the uint8 row could otherwise alias o, which would keep the
/// compiler from vectorizing.)
template <int Bits>
inline void quant_row_add(const std::uint8_t* __restrict row, std::int64_t dim, const float* w,
                          bool fused, float* __restrict o) {
  float scale, bias;
  quant_scale_bias<Bits>(row, dim, scale, bias);
  if (w == nullptr) {
    for (std::int64_t d = 0; d < dim; ++d) o[d] = o[d] + quant_value<Bits>(row, d, scale, bias);
  } else if (fused) {
    const float wi = *w;
    for (std::int64_t d = 0; d < dim; ++d) {
      o[d] = std::fma(quant_value<Bits>(row, d, scale, bias), wi, o[d]);
    }
  } else {
    const float wi = *w;
    for (std::int64_t d = 0; d < dim; ++d) {
      const float prod = quant_value<Bits>(row, d, scale, bias) * wi;
      o[d] = o[d] + prod;
    }
  }
}

/// o[d] = value(d) where first or value(d) > o[d].
template <int Bits>
inline void quant_row_max(const std::uint8_t* __restrict row, std::int64_t dim, bool first,
                          float* __restrict o) {
  float scale, bias;
  quant_scale_bias<Bits>(row, dim, scale, bias);
  for (std::int64_t d = 0; d < dim; ++d) {
    const float v = quant_value<Bits>(row, d, scale, bias);
    if (first || v > o[d]) o[d] = v;
  }
}

/// bag_sum over dequantized rows (per element the same order and roundings as the float32
/// bag_sum): acc = acc + v; with psw acc = fma(v, psw[i], acc) without a padding_idx (ATen's
/// fused fast path), acc = acc + v * psw[i] with one; v the dequantized element.
///   table [*, row_bytes], ids [n], bounds [B + 1], psw [n] or null -> out [B, dim]
template <int Bits, typename Index>
void quant_bag_sum(const std::uint8_t* table, std::int64_t dim, const Index* ids,
                   const std::int64_t* bounds, std::int64_t num_bags, std::int64_t padding_idx,
                   const float* psw, float* out) {
  const std::int64_t rb = quant_row_bytes<Bits>(dim);
  for (std::int64_t b = 0; b < num_bags; ++b) {
    float* o = out + b * dim;
    std::fill(o, o + dim, 0.0f);
    for (std::int64_t i = bounds[b]; i < bounds[b + 1]; ++i) {
      if (ids[i] == padding_idx) continue;
      quant_row_add<Bits>(table + static_cast<std::int64_t>(ids[i]) * rb, dim,
                          psw ? psw + i : nullptr, padding_idx < 0, o);
    }
  }
}

/// bag_max over dequantized rows: the first strictly largest value per element; empty and
/// all-padding bags give 0.
template <int Bits, typename Index>
void quant_bag_max(const std::uint8_t* table, std::int64_t dim, const Index* ids,
                   const std::int64_t* bounds, std::int64_t num_bags, std::int64_t padding_idx,
                   float* out) {
  const std::int64_t rb = quant_row_bytes<Bits>(dim);
  for (std::int64_t b = 0; b < num_bags; ++b) {
    float* o = out + b * dim;
    std::fill(o, o + dim, 0.0f);
    bool first = true;
    for (std::int64_t i = bounds[b]; i < bounds[b + 1]; ++i) {
      if (ids[i] == padding_idx) continue;
      quant_row_max<Bits>(table + static_cast<std::int64_t>(ids[i]) * rb, dim, first, o);
      first = false;
    }
  }
}

}  // namespace emb::detail::ref
