#include "emb/dtype.h"

#include <cmath>
#include <cstring>
#include <string>

#include "emb/error.h"

namespace emb {

void detail::throw_element_size_of_invalid(DType dtype) {
  throw ValueError("element_size: dtype code " + std::to_string(static_cast<int>(dtype)) +
                   " is not a DType (valid: 0 to 7)");
}

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "float32";
    case DType::kFloat64:
      return "float64";
    case DType::kFloat16:
      return "float16";
    case DType::kBFloat16:
      return "bfloat16";
    case DType::kInt32:
      return "int32";
    case DType::kInt64:
      return "int64";
    case DType::kInt8:
      return "int8";
    case DType::kUInt8:
      return "uint8";
  }
  return "invalid";
}

bool is_floating(DType dtype) {
  return dtype == DType::kFloat32 || dtype == DType::kFloat64 || dtype == DType::kFloat16 ||
         dtype == DType::kBFloat16;
}

bool is_integral(DType dtype) {
  return dtype == DType::kInt32 || dtype == DType::kInt64 || dtype == DType::kInt8 ||
         dtype == DType::kUInt8;
}

// float32 -> binary16, round to nearest even. Handles overflow to inf, subnormals and NaN.
Half::Half(float value) {
  const std::uint32_t f = std::bit_cast<std::uint32_t>(value);
  const std::uint32_t sign = (f >> 16) & 0x8000u;
  const std::uint32_t abs = f & 0x7fffffffu;
  std::uint16_t out;
  if (abs >= 0x7f800000u) {                                                   // inf or NaN
    out = static_cast<std::uint16_t>(abs > 0x7f800000u ? 0x7e00u : 0x7c00u);  // canonical quiet NaN
  } else if (abs >= 0x477ff000u) {  // >= 65520 rounds to inf
    out = 0x7c00u;
  } else if (abs < 0x38800000u) {  // below the smallest normal half (2^-14): subnormal or zero
    // value * 2^24 is the subnormal's integer mantissa; rint rounds to nearest even.
    const float scaled = std::bit_cast<float>(abs) * 16777216.0f;
    out = static_cast<std::uint16_t>(std::nearbyint(scaled));
  } else {
    const std::uint32_t mant_odd = (abs >> 13) & 1u;
    const std::uint32_t rounded = abs + 0xfffu + mant_odd;  // round to nearest even at bit 13
    out = static_cast<std::uint16_t>((rounded - (112u << 23)) >> 13);
  }
  bits = static_cast<std::uint16_t>(sign | out);
}

Half::operator float() const {
  const std::uint32_t sign = std::uint32_t{bits & 0x8000u} << 16;
  const std::uint32_t exp = (bits >> 10) & 0x1fu;
  const std::uint32_t mant = bits & 0x3ffu;
  if (exp == 0x1fu) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    const float mag = static_cast<float>(mant) * (1.0f / 16777216.0f);  // mant * 2^-24, exact
    return sign ? -mag : mag;
  }
  return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
}

BFloat16::BFloat16(float value) {
  const std::uint32_t f = std::bit_cast<std::uint32_t>(value);
  if (std::isnan(value)) {
    bits = static_cast<std::uint16_t>(0x7fc0u);
    return;
  }
  const std::uint32_t rounding_bias = 0x7fffu + ((f >> 16) & 1u);
  bits = static_cast<std::uint16_t>((f + rounding_bias) >> 16);
}

}  // namespace emb
