// Dtype dispatch of the type-erased fast-kernel arguments.
#pragma once

#include <cstdint>

#include "emb/dtype.h"

namespace emb::detail {

/// Calls fn(T{}) for the floating dtype (float, double, Half, BFloat16).
template <typename Fn>
decltype(auto) visit_float_type(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat64:
      return fn(double{});
    case DType::kFloat16:
      return fn(Half{});
    case DType::kBFloat16:
      return fn(BFloat16{});
    default:
      return fn(float{});
  }
}

/// Calls fn(T{}, Index{}) for the floating dtype and the id width.
template <typename Fn>
decltype(auto) visit_float_and_index(DType dtype, bool ids64, Fn&& fn) {
  return visit_float_type(dtype, [&](auto t) {
    if (ids64) return fn(t, std::int64_t{});
    return fn(t, std::int32_t{});
  });
}

}  // namespace emb::detail
