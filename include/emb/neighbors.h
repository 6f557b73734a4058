// emb/neighbors.h — exact cosine nearest neighbours over the rows of a table (what
// `emb neighbors` and gensim's most_similar compute), SIMD and threads.
//
//   emb::Tensor inv = emb::row_inverse_norms(weight);             // once per table
//   emb::CosineNeighbors nn = emb::cosine_top_k(weight, inv, weight.select(42), 10, 42);
//   // nn.ids[0] is the row most similar to row 42 (itself left out), nn.scores[0] its cosine
//
// Arithmetic (fixed, whatever the SIMD target or thread count): a dot product sums element d
// into partial sum d % 16 (a rounded float32 product, then a rounded sum) and folds the 16
// partials pairwise; inverse norm = 1 / sqrt(dot(row, row)) (0 for an all-zero row); the query
// is scaled by its inverse norm; score(r) = dot(row r, unit query) * inverse norm(r).
#pragma once

#include <cstdint>
#include <vector>

#include "emb/tensor.h"

namespace emb {

/// 1 / ||row|| of every row (0 for an all-zero row).
///   table [rows, dim] float32 -> [rows] float32
/// Throws ValueError (not a 2-D float32 tensor).
Tensor row_inverse_norms(const Tensor& table);

/// The k rows most similar to a query, best first.
struct CosineNeighbors {
  std::vector<std::int64_t> ids;
  std::vector<float> scores;  // cosine similarities, non-increasing
};

/// The min(k, candidates) rows with the largest cosine similarity to query, ties to the lower
/// row; row `exclude` (-1: none) and rows with a NaN score are left out.
///   table [rows, dim] float32, inverse_norms [rows] float32 (row_inverse_norms(table)),
///   query [dim] float32 (any floating dtype is converted)
/// Throws ValueError naming the argument (shapes, dtypes, k < 0, exclude out of range).
CosineNeighbors cosine_top_k(const Tensor& table, const Tensor& inverse_norms, const Tensor& query,
                             std::int64_t k, std::int64_t exclude = -1);

}  // namespace emb
