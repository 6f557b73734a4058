// Helpers shared by the readers.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "emb/io/access.h"
#include "emb/tensor.h"
#include "io/file_io.h"

namespace emb::detail::io {

/// A tensor of shape/dtype whose validated bytes start at p inside f: a read-only view of f
/// (Access::kMap and p aligned for dtype), else an owning copy.
inline Tensor make_tensor(const std::shared_ptr<const FileBytes>& f, const std::byte* p,
                          const Shape& shape, DType dtype, emb::io::Access access) {
  const bool aligned = reinterpret_cast<std::uintptr_t>(p) % element_size(dtype) == 0;
  if (access == emb::io::Access::kMap && aligned) {
    return Tensor::view(const_cast<std::byte*>(p), shape, dtype, f)
        .read_only("memory-mapped from " + f->path());
  }
  Tensor t = Tensor::empty(shape, dtype);
  if (t.nbytes() != 0) std::memcpy(t.raw_data(), p, t.nbytes());
  return t;
}

}  // namespace emb::detail::io
