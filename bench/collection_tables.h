// The tables, batches and gradients the collection benchmarks share (collection_bench,
// dist_bench): 8 tables of 100,000 x 64 float32 named t0 .. t7; a batch has 256 bags of 20
// uniform random ids per table.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "emb/emb.h"

namespace emb::bench {

constexpr int kTables = 8;
constexpr std::int64_t kRows = 100000;
constexpr std::int64_t kDim = 64;
constexpr std::int64_t kBags = 256;
constexpr std::int64_t kBagLen = 20;

/// The kTables tables' configurations.
inline std::vector<EmbeddingBagConfig> table_configs() {
  std::vector<EmbeddingBagConfig> configs;
  for (int t = 0; t < kTables; ++t) configs.emplace_back("t" + std::to_string(t), kRows, kDim);
  return configs;
}

/// A batch for every table, its ids drawn from rng (table by table).
inline KeyedJaggedBatch make_batch(std::mt19937_64& rng) {
  std::uniform_int_distribution<std::int64_t> row(0, kRows - 1);
  KeyedJaggedBatch b;
  for (int t = 0; t < kTables; ++t) {
    std::vector<std::int64_t> ids(kBags * kBagLen);
    for (auto& id : ids) id = row(rng);
    std::vector<std::int64_t> offsets(kBags);
    for (std::int64_t k = 0; k < kBags; ++k) offsets[static_cast<std::size_t>(k)] = k * kBagLen;
    b.add("t" + std::to_string(t), Tensor::from_vector<std::int64_t>(ids, {kBags * kBagLen}),
          Tensor::from_vector<std::int64_t>(offsets, {kBags}));
  }
  return b;
}

/// The gradient of every table's pooled output: [kBags, kDim] standard normal (seed 3).
inline std::vector<Tensor> make_grads() {
  Generator gen(3);
  std::vector<Tensor> g;
  for (int t = 0; t < kTables; ++t) {
    g.push_back(Tensor::empty({kBags, kDim}, DType::kFloat32));
    gen.normal_(g.back());
  }
  return g;
}

}  // namespace emb::bench
