// The table tools of the emb command: info, convert, lookup and neighbors over embedding tables
// in any format emb::io reads (safetensors, .npy, word2vec text and binary, GloVe, fastText
// .vec), quantized (int8/int4) safetensors tables included. See docs/CLI.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace emb_cli {

struct TableToolOptions {
  std::string tensor;  // the safetensors tensor to use ("" picks the weight)
  bool ids = false;    // queries are row ids, not words
  bool quiet = false;  // no progress, no timings
};

/// Prints the file's format, size, tensors (dtype, shape, bytes), the table and its
/// vocabulary, and a summary of the rows' L2 norms.
int run_info(const std::string& path, const TableToolOptions& options);

/// Reads `in` (any format), converts the table to `dtype` ("" keeps it; f32, f64, f16, bf16,
/// int8, int4) and writes `out` in the format its extension names (or `format`).
int run_convert(const std::string& in, const std::string& out, const std::string& dtype,
                const std::string& format, const TableToolOptions& options);

/// Prints "<query> <v1> ... <vdim>" for each query (a word of the vocabulary, or a row id).
int run_lookup(const std::string& path, const std::vector<std::string>& queries,
               const TableToolOptions& options);

/// Prints "<query> <neighbour> <cosine>" for the k rows most similar to each query (the query
/// itself left out), best first; timings on stderr.
int run_neighbors(const std::string& path, const std::vector<std::string>& queries, std::int64_t k,
                  const TableToolOptions& options);

}  // namespace emb_cli
