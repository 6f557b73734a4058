// What the Embedding and EmbeddingBag modules share: building the weight, normalizing
// padding_idx, and PyTorch's repr of option values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "emb/parameter.h"
#include "emb/tensor.h"

namespace emb::detail {

/// Python's repr() of a float: 2.0 -> "2.0", 0.1 -> "0.1", 1e-08 -> "1e-08",
/// 2.5e15 -> "2500000000000000.0", 1e16 -> "1e+16", inf -> "inf", nan -> "nan".
std::string py_float_repr(double v);

/// The module's weight: `given` (the _weight option, shared, shape-checked) when defined, else a
/// new uninitialized [num, dim] float32 table the caller resets. Throws ValueError for negative
/// or overflowing sizes and a mismatched _weight, naming `module`.
Parameter make_module_weight(const Tensor& given, std::int64_t num, std::int64_t dim,
                             const char* module);

/// padding_idx in its non-negative form (IndexError when out of range); none stays none.
std::optional<std::int64_t> module_padding_idx(std::optional<std::int64_t> padding_idx,
                                               std::int64_t num, const char* module);

/// What reset_parameters() checks before it draws anything (the weight may have been replaced by
/// Parameter::set_data): defined, 2-D, floating, and padding_idx one of its rows.
void check_reset_weight(const Tensor& weight, std::optional<std::int64_t> padding_idx,
                        const char* op);

/// Throws ValueError unless from_pretrained's table is defined and 2-D.
void check_pretrained(const Tensor& embeddings, const char* what);

/// Tensor::zeros(shape, dtype) for a gradient that about `writes` rows (dim 0), spread at random,
/// are about to be added into. Both forms leave the zeroing to the OS on first touch; this one
/// asks for 2 MiB transparent huge pages when the writes are dense enough that most 4 KiB pages
/// would be touched anyway (one fault per 2 MiB instead of up to 512), and plain 4 KiB pages
/// when they are sparse (a few rows must not pay 2 MiB of zeroing each). Defined in tensor.cc.
Tensor zeros_for_scatter(const Shape& shape, DType dtype, std::int64_t writes);

/// Tensor::empty(shape, dtype) for an output that a kernel writes whole, made once per step of a
/// loop (a lookup's or a bag's output, the values of a coalesced sparse gradient): from 1 MiB on,
/// a block of release_cached_memory()'s cache that fits with at most an eighth and a huge page to
/// spare, so that a step does not fault in (and the OS zero) fresh pages the kernel overwrites
/// anyway; a fresh block has a sixteenth more room (in whole huge pages), for the next step's
/// slightly larger output. Defined in tensor.cc.
Tensor empty_reused(Shape shape, DType dtype);

}  // namespace emb::detail
