// Dtype dispatch of the type-erased fast-kernel arguments.
#pragma once

#include <cstdint>

#include "emb/dtype.h"
#include "index_check.h"

namespace emb::detail {

/// Calls fn(T{}, Index{}) for the floating dtype and the id width.
template <typename Fn>
decltype(auto) visit_float_and_index(DType dtype, bool ids64, Fn&& fn) {
  return visit_floating(dtype, [&](auto t) {
    if (ids64) return fn(t, std::int64_t{});
    return fn(t, std::int32_t{});
  });
}

}  // namespace emb::detail
