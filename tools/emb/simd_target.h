// The SIMD target the library's kernels run on, for `emb --version`.
#pragma once

#include <string>

#include "emb/error.h"
#include "emb/runtime.h"

namespace emb_cli {

/// emb::simd_target(), or what is wrong with EMB_SIMD ("none (EMB_SIMD=avx9: unknown ...)").
inline std::string simd_target_for_version() {
  try {
    return emb::simd_target();
  } catch (const emb::Error& e) {
    return std::string("none (") + e.what() + ")";
  }
}

}  // namespace emb_cli
