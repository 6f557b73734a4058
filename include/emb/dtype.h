// emb/dtype.h — element types: the DType tag, and the 16-bit float storage types.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace emb {

// The enumerators' values are stored in files (optimizer state): append, never reorder.
enum class DType : std::uint8_t {
  kFloat32,
  kFloat64,
  kFloat16,
  kBFloat16,
  kInt32,
  kInt64,
  kInt8,
  kUInt8
};

/// True when dtype is one of the enumerators (a DType cast from any other integer is not).
/// Every function that takes a DType checks it: ValueError for an invalid one.
inline bool is_valid_dtype(DType dtype) {
  return static_cast<std::uint8_t>(dtype) <= static_cast<std::uint8_t>(DType::kUInt8);
}

namespace detail {
[[noreturn]] void throw_element_size_of_invalid(DType dtype);
}  // namespace detail

/// Bytes per element: kFloat32 -> 4, kFloat16 -> 2, ... Throws ValueError for an invalid dtype.
/// (Inline: every tensor's byte count asks for it.)
inline std::size_t element_size(DType dtype) {
  constexpr std::uint8_t kBytes[] = {4, 8, 2, 2, 4, 8, 1, 1};  // in the enumerators' order
  if (!is_valid_dtype(dtype)) detail::throw_element_size_of_invalid(dtype);
  return kBytes[static_cast<std::uint8_t>(dtype)];
}
/// PyTorch's name without the prefix: "float32", "float64", "float16", "bfloat16", "int32",
/// "int64", "int8", "uint8"; "invalid" for a value outside the enum.
std::string_view dtype_name(DType dtype);
bool is_floating(DType dtype);
bool is_integral(DType dtype);

/// IEEE 754 binary16, stored as bits. Conversions round to nearest even, like PyTorch's c10::Half.
struct Half {
  std::uint16_t bits = 0;
  Half() = default;
  Half(float value);       // NOLINT(google-explicit-constructor): mirrors c10::Half
  operator float() const;  // NOLINT(google-explicit-constructor)
  static Half from_bits(std::uint16_t b) {
    Half h;
    h.bits = b;
    return h;
  }
};

/// bfloat16 (the high half of a float32), stored as bits. From float: round to nearest even,
/// NaN stays NaN, like PyTorch's c10::BFloat16.
struct BFloat16 {
  std::uint16_t bits = 0;
  BFloat16() = default;
  BFloat16(float value);  // NOLINT(google-explicit-constructor)
  operator float() const { return std::bit_cast<float>(std::uint32_t{bits} << 16); }  // NOLINT
  static BFloat16 from_bits(std::uint16_t b) {
    BFloat16 h;
    h.bits = b;
    return h;
  }
};

/// The DType tag of a C++ element type: dtype_of<float> == DType::kFloat32.
template <typename T>
inline constexpr DType dtype_of = [] {
  if constexpr (std::is_same_v<T, float>)
    return DType::kFloat32;
  else if constexpr (std::is_same_v<T, double>)
    return DType::kFloat64;
  else if constexpr (std::is_same_v<T, Half>)
    return DType::kFloat16;
  else if constexpr (std::is_same_v<T, BFloat16>)
    return DType::kBFloat16;
  else if constexpr (std::is_same_v<T, std::int32_t>)
    return DType::kInt32;
  else if constexpr (std::is_same_v<T, std::int8_t>)
    return DType::kInt8;
  else if constexpr (std::is_same_v<T, std::uint8_t>)
    return DType::kUInt8;
  else {
    static_assert(std::is_same_v<T, std::int64_t>, "emb: unsupported element type");
    return DType::kInt64;
  }
}();

/// Calls fn(T{}) with T the C++ type of dtype (float, double, Half, BFloat16, int32_t, int64_t,
/// int8_t, uint8_t).
template <typename Fn>
decltype(auto) visit_dtype(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32:
      return fn(float{});
    case DType::kFloat64:
      return fn(double{});
    case DType::kFloat16:
      return fn(Half{});
    case DType::kBFloat16:
      return fn(BFloat16{});
    case DType::kInt32:
      return fn(std::int32_t{});
    case DType::kInt8:
      return fn(std::int8_t{});
    case DType::kUInt8:
      return fn(std::uint8_t{});
    case DType::kInt64:
      break;
  }
  return fn(std::int64_t{});
}

}  // namespace emb
