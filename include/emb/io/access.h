// emb/io/access.h — how a reader gives back the tensors of a file: copied into memory, or viewed
// in a read-only memory mapping of the file.
#pragma once

#include <cstdint>

namespace emb::io {

/// kCopy: every tensor owns a copy of its bytes (writable; the file may change afterwards).
/// kMap: tensors view a read-only mapping of the file (opening costs the same for any size;
///   pages are read on first touch; tables larger than memory work). The tensors keep the
///   mapping alive and are read-only: a write through emb (renorm, an optimizer step, fill_)
///   throws ValueError naming the file; Tensor::clone() gives a writable copy. A tensor whose
///   bytes are not aligned for its dtype in the file is copied instead (never viewed
///   misaligned). The file must not be truncated or rewritten in place while mapped (emb's
///   writers replace files by rename, which leaves existing mappings intact).
enum class Access : std::uint8_t { kCopy, kMap };

}  // namespace emb::io
