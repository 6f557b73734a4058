// Validation shared by the functional ops: index dtypes, id ranges, padding_idx.
// Every check throws before anything is written.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "emb/sparse_grad.h"
#include "emb/tensor.h"

namespace emb {
enum class EmbeddingBagMode;
struct EmbeddingBagFuncOptions;
}  // namespace emb

namespace emb::detail {

/// Throws ValueError unless mode is kSum, kMean or kMax (not another integer cast to the enum).
void check_bag_mode(EmbeddingBagMode mode, const char* op);

/// Every check of embedding_bag's weight-gradient ops (grad_output, num_weights, the bag layout,
/// per_sample_weights) without computing anything: for a frozen module, whose backward computes
/// no weight gradient but must refuse the same arguments.
void check_embedding_bag_backward_args(const char* op, const Tensor& grad_output,
                                       const Tensor& input, const Tensor& offsets,
                                       std::int64_t num_weights,
                                       const EmbeddingBagFuncOptions& options,
                                       const Tensor& per_sample_weights);

/// "[1][3]" for flat position 7 of shape [2, 4]; "" for a 0-d tensor.
std::string position_string(const Shape& shape, std::int64_t flat);

/// Throws ValueError unless t is defined and int32 or int64:
///   "embedding: indices must be int32 or int64, got float32"
void check_index_dtype(const Tensor& t, const char* op, const char* arg);

/// Throws IndexError for the first id outside [0, num_rows):
///   "embedding: indices[1][3] = 12 is out of range for a table of 10 rows"
void check_ids_in_range(const Tensor& ids, std::int64_t num_rows, const char* op, const char* arg);

/// Throws check_ids_in_range's IndexError, for ids a kernel has found to hold an id out of range.
[[noreturn]] void throw_first_id_out_of_range(const Tensor& ids, std::int64_t num_rows,
                                              const char* op, const char* arg);

/// padding_idx in [-num_rows, num_rows) -> its non-negative form; none -> -1. Throws IndexError:
///   "Embedding: padding_idx = 12 is out of range for a table of 10 rows (valid: -10 to 9)"
std::int64_t normalize_padding_idx(std::optional<std::int64_t> padding_idx, std::int64_t num_rows,
                                   const char* op);

/// The checks of both embedding backward ops (grad_output floating and shaped indices.shape +
/// [dim], ids in range, padding_idx); returns the normalized padding_idx (-1 for none).
std::int64_t check_embedding_backward_args(const char* op, const Tensor& grad_output,
                                           const Tensor& indices, std::int64_t num_weights,
                                           std::optional<std::int64_t> padding_idx);

/// counts[i] = number of positions with the id of position i (all positions, padding included):
/// [4, 1, 4] -> [2, 1, 2] (scale_grad_by_freq of a sparse gradient). ids valid for num_weights.
std::vector<std::int64_t> position_counts(const Tensor& ids, std::int64_t num_weights);

/// The uncoalesced sparse gradient of validated arguments: one row per position of ids (flat)
/// whose id is not padding_idx, in order, the value row grad[src_row[i]] (src_row null: row i of
/// grad seen as [n, dim]) scaled as ref::sparse_grad_rows says (psw or bag_size, then counts).
/// coalesced: those rows summed per id (SparseGrad::coalesce of the result), in one pass.
SparseGrad sparse_grad_of(const Tensor& grad, const Tensor& ids, std::int64_t padding_idx,
                          const std::vector<std::int64_t>& counts, const std::int64_t* src_row,
                          const Tensor& psw, const std::int64_t* bag_size, std::int64_t num_weights,
                          bool coalesced = false);

/// The checks of a caller's output tensor (the *_out ops): defined, writable, of dtype and
/// shape prefix + [last], sharing memory with none of `inputs` (named by `names`, in order).
/// Allocates nothing unless it throws ValueError:
///   "embedding_out: out shares memory with weight"
void check_out(const Tensor& out, DType dtype, std::span<const std::int64_t> prefix,
               std::int64_t last, const char* op, std::initializer_list<const Tensor*> inputs,
               std::initializer_list<const char*> names);

/// Throws ValueError unless weight is defined and 2-D.
void check_weight_2d(const Tensor& weight, const char* op);

/// Throws ValueError unless t is float32, float64, float16 or bfloat16.
void check_floating(const Tensor& t, const char* op, const char* arg);

/// Calls fn(const I* ids) with I = int32_t or int64_t, the dtype of a validated index tensor.
template <typename Fn>
decltype(auto) visit_ids(const Tensor& ids, Fn&& fn) {
  if (ids.dtype() == DType::kInt32) return fn(static_cast<const std::int32_t*>(ids.raw_data()));
  return fn(static_cast<const std::int64_t*>(ids.raw_data()));
}

/// Calls fn(T{}) for T = float, double, Half, BFloat16 (a validated floating dtype).
template <typename Fn>
decltype(auto) visit_floating(DType dtype, Fn&& fn) {
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

}  // namespace emb::detail
