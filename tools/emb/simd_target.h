// The SIMD target the library's kernels run on, for `emb --version`.
#pragma once

namespace emb_cli {

/// Placeholder until the library exposes its dispatch: the kernels are the scalar reference
/// loops, so this is "scalar". Replace with the library's own query when it has one.
inline const char* simd_target_placeholder() {
  return "scalar";
}

}  // namespace emb_cli
