// What the mpi tests share: the tables, their plans, and the batches of a step (every rank
// builds every rank's batch from the same seed, and the global batch that one process sees).
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "emb/dist/sharded_embedding_bag_collection.h"
#include "emb/emb.h"

namespace emb::dist::testing {

struct TableSpec {
  std::int64_t rows;
  std::int64_t dim;
  EmbeddingBagMode mode;
  DType dtype;
  bool row_wise;
};

inline const std::vector<TableSpec>& trained_tables() {
  static const std::vector<TableSpec> specs = {
      {37, 8, EmbeddingBagMode::kSum, DType::kFloat32, false},
      {50, 5, EmbeddingBagMode::kMean, DType::kFloat32, true},
      {23, 16, EmbeddingBagMode::kSum, DType::kFloat64, true},
      {10, 3, EmbeddingBagMode::kMean, DType::kFloat64, false},
      {3, 7, EmbeddingBagMode::kSum, DType::kFloat32, true},  // fewer rows than some rank counts
  };
  return specs;
}

inline std::vector<EmbeddingBagConfig> configs_of(const std::vector<TableSpec>& specs) {
  std::vector<EmbeddingBagConfig> c;
  for (std::size_t t = 0; t < specs.size(); ++t) {
    c.push_back(EmbeddingBagConfig("t" + std::to_string(t), specs[t].rows, specs[t].dim)
                    .mode(specs[t].mode)
                    .dtype(specs[t].dtype));
  }
  return c;
}

inline std::vector<ShardingPlan> plans_of(const std::vector<TableSpec>& specs, int ranks) {
  std::vector<ShardingPlan> p;
  for (std::size_t t = 0; t < specs.size(); ++t) {
    p.push_back(specs[t].row_wise ? ShardingPlan::row_wise()
                                  : ShardingPlan::table_wise(static_cast<int>(t) % ranks));
  }
  return p;
}

// Every rank's batch of one step (the same on every rank: each takes its own).
struct StepData {
  std::vector<KeyedJaggedBatch> local;         // [rank]
  KeyedJaggedBatch global;                     // the concatenation
  std::vector<std::vector<Tensor>> local_grad; // [rank][table]
  std::vector<Tensor> global_grad;             // [table]
};

inline StepData make_step(const std::vector<TableSpec>& specs, int ranks, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Generator gen(seed);
  StepData s;
  s.local.resize(static_cast<std::size_t>(ranks));
  s.local_grad.resize(static_cast<std::size_t>(ranks));
  for (std::size_t t = 0; t < specs.size(); ++t) {
    std::vector<std::int64_t> g_ids, g_off;
    std::vector<Tensor> grads;
    for (int r = 0; r < ranks; ++r) {
      const std::int64_t bags = 2 + (r + static_cast<int>(t)) % 3;
      std::vector<std::int64_t> ids, off;
      for (std::int64_t b = 0; b < bags; ++b) {
        off.push_back(static_cast<std::int64_t>(ids.size()));
        g_off.push_back(static_cast<std::int64_t>(g_ids.size()));
        const auto len = static_cast<std::int64_t>(rng() % 7);  // empty bags too
        for (std::int64_t i = 0; i < len; ++i) {
          const std::int64_t hot = std::min<std::int64_t>(specs[t].rows, 3);
          const auto id = static_cast<std::int64_t>(rng() % 2 ? rng() % hot : rng() % specs[t].rows);
          ids.push_back(id);
          g_ids.push_back(id);
        }
      }
      const auto n = static_cast<std::int64_t>(ids.size());
      s.local[r].add("t" + std::to_string(t), Tensor::from_vector<std::int64_t>(ids, {n}),
                     Tensor::from_vector<std::int64_t>(off, {bags}));
      Tensor g = Tensor::empty({bags, specs[t].dim}, DType::kFloat32);
      gen.normal_(g);
      s.local_grad[r].push_back(g.to(specs[t].dtype));
    }
    std::vector<Tensor> parts;
    for (int r = 0; r < ranks; ++r) parts.push_back(s.local_grad[r][t]);
    std::int64_t total = 0;
    for (const Tensor& p : parts) total += p.size(0);
    Tensor all = Tensor::empty({total, specs[t].dim}, specs[t].dtype);
    std::size_t at = 0;
    for (const Tensor& p : parts) {
      std::memcpy(static_cast<std::byte*>(all.raw_data()) + at, p.raw_data(), p.nbytes());
      at += p.nbytes();
    }
    s.global_grad.push_back(all);
    const auto gn = static_cast<std::int64_t>(g_ids.size());
    const auto gb = static_cast<std::int64_t>(g_off.size());
    s.global.add("t" + std::to_string(t), Tensor::from_vector<std::int64_t>(g_ids, {gn}),
                 Tensor::from_vector<std::int64_t>(g_off, {gb}));
  }
  return s;
}

// Rows [first, first + n) of a [*, dim] tensor.
inline Tensor rows_of(const Tensor& t, std::int64_t first, std::int64_t n) {
  Tensor out = Tensor::empty({n, t.size(1)}, t.dtype());
  const std::size_t row = static_cast<std::size_t>(t.size(1)) * element_size(t.dtype());
  if (n > 0 && row > 0) {
    std::memcpy(out.raw_data(), static_cast<const std::byte*>(t.raw_data()) + first * row, n * row);
  }
  return out;
}

inline std::int64_t first_bag_of(const StepData& s, std::size_t t, int rank) {
  std::int64_t b = 0;
  for (int r = 0; r < rank; ++r) b += s.local[r].offsets[t].numel();
  return b;
}

/// The sharded collection of trained_tables() over comm, its tables drawn from seed.
inline ShardedEmbeddingBagCollection make_trained_sharded(Communicator& comm,
                                                          const FusedOptimizerOptions& optimizer,
                                                          RowWisePooling pooling,
                                                          std::uint64_t seed) {
  Generator gen(seed);
  return ShardedEmbeddingBagCollection(comm, configs_of(trained_tables()),
                                       plans_of(trained_tables(), comm.size()), optimizer,
                                       pooling, gen);
}

/// One training step on this rank's share of the global batch drawn from seed.
inline void train_step(Communicator& comm, ShardedEmbeddingBagCollection& c, std::uint64_t seed) {
  const StepData s = make_step(trained_tables(), comm.size(), seed);
  c.forward(s.local[comm.rank()]);
  c.backward_and_step(s.local[comm.rank()], s.local_grad[comm.rank()]);
}

/// Every table, optimizer state tensor and step count of c equals one's.
inline void expect_equal(const ShardedEmbeddingBagCollection& c, const EmbeddingBagCollection& one,
                         const std::string& what) {
  for (std::size_t t = 0; t < one.num_tables(); ++t) {
    EXPECT_TRUE(c.gather_table(t).equal(one.weight(t))) << what << " table " << t;
    for (const auto& [key, value] : one.state(t).tensors) {
      EXPECT_TRUE(c.gather_state(t, key).equal(value)) << what << " " << key << " " << t;
    }
    EXPECT_EQ(c.step_count(t), one.state(t).step) << what << " step " << t;
  }
}

}  // namespace emb::dist::testing
