// Fast kernels: SIMD (Highway, the target chosen at run time), threads (OpenMP, each thread owns
// a range of output rows or bags, so results never depend on the thread count) and software
// prefetch of the rows a few ids ahead. Each has a scalar twin in kernels/ref/ that defines its
// result bit for bit; the unit tests compare the two on every SIMD target the CPU has.
// Inputs are validated by the functional layer; kernels never throw (except that the very first
// kernel call of a process may throw ValueError for a bad EMB_SIMD, before anything is written).
#pragma once

#include <cstddef>
#include <cstdint>

#include "emb/dtype.h"

namespace emb::detail::fast {

/// How a bag sum combines a row with its per-sample weight: acc = fma(row, w, acc) (one
/// rounding) or acc = acc + row * w (two). The functional layer picks what ATen does.
enum class PswCombine : std::uint8_t { kFused, kUnfused };

/// How the per-sample-weight gradient's dot product rounds, element by element, left to right:
/// acc = fma(g, w, acc); acc = acc + g * w; or (float16 in its own arithmetic)
/// acc = T(acc + T(g * w)). The functional layer picks what ATen does.
enum class PswDot : std::uint8_t { kFused, kUnfused, kRoundEachStep };

// ---- Type-erased arguments: one exported entry per kernel, the dtype dispatched inside. --------

struct GatherArgs {
  const std::byte* table;
  std::size_t row_bytes;
  const void* ids;  // int32 or int64
  bool ids64;
  std::int64_t n;
  std::byte* out;
  // The table's rows when the kernel is to check the ids itself (an id outside [0, num_rows) is
  // then never read, and the call returns false, its output unspecified); -1: ids validated.
  std::int64_t num_rows = -1;
};

struct BagSumArgs {
  DType dtype;
  bool ids64;
  const void* table;
  std::int64_t dim;
  const void* ids;
  const std::int64_t* bounds;  // [num_bags + 1]
  std::int64_t num_bags;
  std::int64_t padding_idx;
  const void* psw;  // [n] or null
  PswCombine combine;
  const std::int64_t* mean_sizes;  // [num_bags]: mode mean divides by these; null: mode sum
  void* out;
  std::int64_t num_rows = -1;  // as GatherArgs::num_rows
};

struct BagMaxArgs {
  DType dtype;
  bool ids64;
  const void* table;
  std::int64_t dim;
  const void* ids;
  const std::int64_t* bounds;
  std::int64_t num_bags;
  std::int64_t padding_idx;
  void* out;
  std::int64_t* max_indices;  // [num_bags, dim] or null: not written
};

/// grad_weight[ids[i]] += alpha_i * grad[src_row(i)] over positions in order (see ref twins).
struct ScatterArgs {
  DType dtype;
  bool ids64;
  const void* grad;
  std::int64_t dim;
  const void* ids;
  const std::int64_t* offset2bag;  // src_row(i) = offset2bag[i]; null: i
  std::int64_t n;
  std::int64_t padding_idx;
  const void* psw;               // [n] or null
  const std::int64_t* counts;    // [num_weights] or null
  const std::int64_t* bag_size;  // [B] or null (mode mean)
  bool bf16_fused_prefix;        // embedding_dense_backward's bfloat16 rounding
  void* grad_weight;
  std::int64_t num_weights;
};

struct ScatterMaxArgs {
  DType dtype;
  const void* grad;
  std::int64_t dim;
  const std::int64_t* max_indices;
  const std::int64_t* bag_size;
  std::int64_t num_bags;
  void* grad_weight;
  std::int64_t num_weights;
};

struct PswBackwardArgs {
  DType dtype;
  bool ids64;
  const void* grad;
  const void* table;
  std::int64_t dim;
  const void* ids;             // [n]
  const std::int64_t* bounds;  // [num_bags + 1]: bag b = positions [bounds[b], bounds[b + 1])
  std::int64_t num_bags;       // n = bounds[num_bags]
  std::int64_t padding_idx;
  PswDot dot;
  void* out;
};

/// Whether every id (int32 or int64) lies in [0, num_rows). Twin: ref::ids_in_range.
bool ids_in_range(const void* ids, bool ids64, std::int64_t n, std::int64_t num_rows);

/// From this many bytes on, an output is written with non-temporal (streaming) stores: it would
/// not stay in the caches anyway, and a plain store first reads each line it writes from memory.
/// Below it the output is left in the caches for whatever reads it next.
inline constexpr std::size_t kStreamBytes = std::size_t{16} << 20;

/// memcpy(to, from, n) (buffers that do not overlap) with streaming stores, for pieces of a
/// buffer of kStreamBytes or more (kernels/bulk.cc).
void stream_copy(std::byte* to, const std::byte* from, std::size_t n);

/// These two return false when they were given num_rows and found an id outside the table.
bool gather_rows_any(const GatherArgs& a);
bool bag_sum_any(const BagSumArgs& a);
void bag_max_any(const BagMaxArgs& a);
void scatter_add_rows_any(const ScatterArgs& a);
void scatter_add_max_any(const ScatterMaxArgs& a);
void bag_per_sample_weights_backward_any(const PswBackwardArgs& a);

/// Row-wise quantized tables (ref/quant_ref.h): bits 8 or 4.
struct QuantGatherArgs {
  int bits;
  bool ids64;
  const std::uint8_t* table;
  std::int64_t dim;
  const void* ids;  // null: rows 0 .. n-1
  std::int64_t n;
  float* out;
};

struct QuantBagArgs {
  int bits;
  bool ids64;
  bool max;  // bag max, else bag sum
  const std::uint8_t* table;
  std::int64_t dim;
  const void* ids;
  const std::int64_t* bounds;
  std::int64_t num_bags;
  std::int64_t padding_idx;
  const float* psw;  // sum only; [n] or null
  float* out;
};

void quant_gather_any(const QuantGatherArgs& a);
void quant_bag_any(const QuantBagArgs& a);

/// ref::quant_gather_rows.
template <int Bits, typename Index>
void quant_gather_rows(const std::uint8_t* table, std::int64_t dim, const Index* ids,
                       std::int64_t n, float* out) {
  quant_gather_any({Bits, sizeof(Index) == 8, table, dim, ids, n, out});
}

/// ref::quant_bag_sum.
template <int Bits, typename Index>
void quant_bag_sum(const std::uint8_t* table, std::int64_t dim, const Index* ids,
                   const std::int64_t* bounds, std::int64_t num_bags, std::int64_t padding_idx,
                   const float* psw, float* out) {
  quant_bag_any(
      {Bits, sizeof(Index) == 8, false, table, dim, ids, bounds, num_bags, padding_idx, psw, out});
}

/// ref::quant_bag_max.
template <int Bits, typename Index>
void quant_bag_max(const std::uint8_t* table, std::int64_t dim, const Index* ids,
                   const std::int64_t* bounds, std::int64_t num_bags, std::int64_t padding_idx,
                   float* out) {
  quant_bag_any({Bits, sizeof(Index) == 8, true, table, dim, ids, bounds, num_bags, padding_idx,
                 nullptr, out});
}

/// Exact cosine top-k (ref::cosine_top_k's arguments).
struct CosineTopKArgs {
  const float* table;
  std::int64_t rows;
  std::int64_t dim;
  const float* inv_norms;
  const float* query;
  std::int64_t k;
  std::int64_t exclude;
  std::int64_t* ids;
  float* scores;
  std::int64_t* found;
};

/// ref::row_inverse_norms.
void row_inverse_norms(const float* table, std::int64_t rows, std::int64_t dim, float* out);
/// ref::cosine_top_k.
void cosine_top_k(const CosineTopKArgs& a);

/// The HWY_* bit of the target the dispatched kernels run on (tests check the dispatch with it).
std::int64_t dispatched_target();

// ---- Typed entry points: the ref twins' signatures. --------------------------------------------

/// out[i] = table[ids[i]] (ref::gather_rows).
template <typename Index>
void gather_rows(const std::byte* table, std::size_t row_bytes, const Index* ids, std::int64_t n,
                 std::byte* out) {
  gather_rows_any({table, row_bytes, ids, sizeof(Index) == 8, n, out});
}

/// gather_rows on ids not yet validated: false (out unspecified, no row outside the table read)
/// when some id lies outside [0, num_rows).
template <typename Index>
[[nodiscard]] bool gather_rows_checked(const std::byte* table, std::size_t row_bytes,
                                       const Index* ids, std::int64_t n, std::byte* out,
                                       std::int64_t num_rows) {
  return gather_rows_any({table, row_bytes, ids, sizeof(Index) == 8, n, out, num_rows});
}

/// ref::bag_sum, with the per-sample-weight combine named.
template <typename T, typename Index>
void bag_sum(const T* table, std::int64_t dim, const Index* ids, const std::int64_t* bounds,
             std::int64_t num_bags, std::int64_t padding_idx, const T* psw, PswCombine combine,
             T* out) {
  bag_sum_any({dtype_of<T>, sizeof(Index) == 8, table, dim, ids, bounds, num_bags, padding_idx, psw,
               combine, nullptr, out});
}

/// ref::bag_sum without weights followed by ref::bag_divide_by_size, in one pass.
template <typename T, typename Index>
void bag_mean(const T* table, std::int64_t dim, const Index* ids, const std::int64_t* bounds,
              std::int64_t num_bags, std::int64_t padding_idx, const std::int64_t* bag_size,
              T* out) {
  bag_sum_any({dtype_of<T>, sizeof(Index) == 8, table, dim, ids, bounds, num_bags, padding_idx,
               nullptr, PswCombine::kFused, bag_size, out});
}

/// bag_sum (mean_sizes null) or bag_mean on ids not yet validated: false (out unspecified, no
/// row outside the table read) when some id lies outside [0, num_rows).
template <typename T, typename Index>
[[nodiscard]] bool bag_sum_checked(const T* table, std::int64_t dim, const Index* ids,
                                   const std::int64_t* bounds, std::int64_t num_bags,
                                   std::int64_t padding_idx, const T* psw, PswCombine combine,
                                   const std::int64_t* mean_sizes, T* out, std::int64_t num_rows) {
  return bag_sum_any({dtype_of<T>, sizeof(Index) == 8, table, dim, ids, bounds, num_bags,
                      padding_idx, psw, combine, mean_sizes, out, num_rows});
}

/// ref::bag_max.
template <typename T, typename Index>
void bag_max(const T* table, std::int64_t dim, const Index* ids, const std::int64_t* bounds,
             std::int64_t num_bags, std::int64_t padding_idx, T* out, std::int64_t* max_indices) {
  bag_max_any({dtype_of<T>, sizeof(Index) == 8, table, dim, ids, bounds, num_bags, padding_idx, out,
               max_indices});
}

/// ref::embedding_dense_backward; grad_weight has num_weights rows.
template <typename T, typename Index>
void embedding_dense_backward(const T* grad, const Index* ids, std::int64_t n, std::int64_t dim,
                              std::int64_t padding_idx, const std::int64_t* counts, T* grad_weight,
                              std::int64_t num_weights) {
  scatter_add_rows_any({dtype_of<T>, sizeof(Index) == 8, grad, dim, ids, nullptr, n, padding_idx,
                        nullptr, counts, nullptr, true, grad_weight, num_weights});
}

/// ref::bag_dense_backward_sum; grad_weight has num_weights rows.
template <typename T, typename Index>
void bag_dense_backward_sum(const T* grad, std::int64_t dim, const Index* ids,
                            const std::int64_t* offset2bag, std::int64_t n,
                            std::int64_t padding_idx, const T* psw, const std::int64_t* counts,
                            const std::int64_t* bag_size, T* grad_weight,
                            std::int64_t num_weights) {
  scatter_add_rows_any({dtype_of<T>, sizeof(Index) == 8, grad, dim, ids, offset2bag, n, padding_idx,
                        psw, counts, bag_size, false, grad_weight, num_weights});
}

/// ref::bag_dense_backward_max; grad_weight has num_weights rows.
template <typename T>
void bag_dense_backward_max(const T* grad, std::int64_t dim, const std::int64_t* max_indices,
                            const std::int64_t* bag_size, std::int64_t num_bags, T* grad_weight,
                            std::int64_t num_weights) {
  scatter_add_max_any(
      {dtype_of<T>, grad, dim, max_indices, bag_size, num_bags, grad_weight, num_weights});
}

/// ref::bag_per_sample_weights_backward, with the dot's rounding named, over the positions of
/// the bags given by their bounds (n = bounds[num_bags]) instead of an offset2bag array: the
/// twin's result for offset2bag[i] = the bag b with bounds[b] <= i < bounds[b + 1].
template <typename T, typename Index>
void bag_per_sample_weights_backward(const T* grad, const T* table, std::int64_t dim,
                                     const Index* ids, const std::int64_t* bounds,
                                     std::int64_t num_bags, std::int64_t padding_idx, PswDot dot,
                                     T* out) {
  bag_per_sample_weights_backward_any({dtype_of<T>, sizeof(Index) == 8, grad, table, dim, ids,
                                       bounds, num_bags, padding_idx, dot, out});
}

}  // namespace emb::detail::fast
