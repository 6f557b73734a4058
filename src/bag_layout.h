// The validated bag layout of embedding_bag's arguments, for other pooling ops (quantized
// tables) that must accept exactly what embedding_bag accepts.
#pragma once

#include <cstdint>
#include <vector>

#include "emb/embedding_bag.h"
#include "emb/tensor.h"

namespace emb::detail {

struct BagLayout {
  Tensor ids;                        // [n] int32 | int64, ids checked against num_rows
  std::vector<std::int64_t> bounds;  // [B + 1]: bag b = positions [bounds[b], bounds[b + 1])
  std::int64_t padding_idx = -1;     // normalized; -1 for none
};

/// Every check embedding_bag makes of input, offsets, options and per_sample_weights (which
/// must have dtype psw_dtype), for a table of num_rows rows. Throws as embedding_bag().
BagLayout plan_bag_layout(const char* op, const Tensor& input, const Tensor& offsets,
                          std::int64_t num_rows, const EmbeddingBagFuncOptions& options,
                          const Tensor& per_sample_weights, DType psw_dtype);

}  // namespace emb::detail
