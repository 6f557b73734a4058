// emb/dist/sharded_embedding_bag_collection.h — an EmbeddingBagCollection whose tables are
// spread over the ranks of a communicator, trained data-parallel (each rank its own batch).
//
//   emb::dist::ShardedEmbeddingBagCollection ebc(
//       comm, configs, {emb::dist::ShardingPlan::table_wise(0), emb::dist::ShardingPlan::row_wise()},
//       emb::optim::RowWiseAdagradOptions(0.1));
//   std::vector<emb::Tensor> out = ebc.forward(my_batch);   // my bags only
//   ebc.backward_and_step(my_batch, my_grad_outputs);
//
// Plans (per table):
//   table-wise  the whole table lives on one rank (its owner)
//   row-wise    rows split in contiguous ranges: rank r holds rows [r N / P, (r + 1) N / P)
// Forward: every rank sends each id to the rank that holds its row (MPI_Alltoall of the counts,
// then MPI_Alltoallv of bag lengths and ids); owners pool with the ordinary kernels; table-wise
// owners return pooled rows; row-wise owners return partial sums that the requester adds (in
// rank order, then mode mean divides by the whole bag's length), or, with exact pooling (and
// always in mode max), the rows themselves, which the requester pools in input order.
// Backward: every rank sends its pooled-row gradients (with the ids again) to the owners, which
// apply the fused sparse optimizer to their rows only.
//
// Equal to one process: with the global batch = rank 0's bags, then rank 1's, ..., each
// table's forward rows are an EmbeddingBagCollection's on the global batch, bitwise, for
// table-wise tables and exact row-wise pooling (the same kernel adds the same rows in the same
// order); partial row-wise sums differ from it by the rounding of a regrouped sum. The tables
// and optimizer states after any number of steps are bitwise the single process's in every
// plan: an owner receives its rows' gradient entries in global input order and applies the
// single process's arithmetic to each row.
//
// Every call is collective: every rank of the communicator calls it, with its own batch. A
// batch refused on one rank (bad ids, shapes) is refused on every rank before anything is sent
// or written (the others throw DistError naming the rank).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "emb/dist/communicator.h"
#include "emb/embedding_bag_collection.h"
#include "emb/generator.h"
#include "emb/tensor.h"

namespace emb::dist {

struct ShardingPlan {
  enum class Kind { kTableWise, kRowWise };
  Kind kind = Kind::kTableWise;
  int owner = 0;  // table-wise: the rank that holds the table

  static ShardingPlan table_wise(int owner) { return {Kind::kTableWise, owner}; }
  static ShardingPlan row_wise() { return {Kind::kRowWise, 0}; }
};

/// How row-wise tables pool: partial sums combined by the requester (the default, TorchRec's
/// pattern: dim values per bag and rank travel back) or the rows themselves, pooled in input
/// order (bitwise one process; dim values per id travel back). Mode max always ships rows.
enum class RowWisePooling { kPartial, kExact };

/// How the tables not given in the configs start:
///   kLikeOneProcess  every rank draws every whole table as EmbeddingBagCollection does and keeps
///                    its rows: equal to one process, but each rank needs the memory of all
///                    tables for a moment (the tests and small tables)
///   kPerShard        each rank draws only its rows, from N(0, 1) with a generator seeded by
///                    generator.next_u64() and its rank: memory per rank = its shards (tables
///                    larger than one machine; load() a checkpoint to start from given values)
enum class ShardInit { kLikeOneProcess, kPerShard };

class ShardedEmbeddingBagCollection {
 public:
  /// Collective. Every rank passes the same configs, plans and options. Tables given in the
  /// configs (the whole table, the same on every rank) are copied shard by shard; the others
  /// are drawn as `init` says (by default as EmbeddingBagCollection draws them from
  /// `generator`: every rank draws every table and keeps its part, so the tables equal one
  /// process's with the same generator).
  /// Throws ValueError (as EmbeddingBagCollection, a plan count that is not the table count,
  /// an owner outside [0, size)).
  ShardedEmbeddingBagCollection(Communicator comm, std::vector<EmbeddingBagConfig> tables,
                                std::vector<ShardingPlan> plans, FusedOptimizerOptions optimizer,
                                RowWisePooling pooling = RowWisePooling::kPartial,
                                Generator& generator = default_generator(),
                                ShardInit init = ShardInit::kLikeOneProcess);

  const Communicator& communicator() const { return comm_; }
  std::size_t num_tables() const { return configs_.size(); }
  const EmbeddingBagConfig& config(std::size_t t) const { return configs_.at(t); }
  const ShardingPlan& plan(std::size_t t) const { return plans_.at(t); }
  const FusedOptimizerOptions& optimizer() const { return optimizer_; }
  RowWisePooling pooling() const { return pooling_; }

  /// The rows [begin, end) of table t held by this rank (empty when it holds none).
  std::int64_t row_begin(std::size_t t) const { return begin_.at(t); }
  std::int64_t row_end(std::size_t t) const { return end_.at(t); }
  /// This rank's shard of table t, [row_end - row_begin, dim], and its optimizer state.
  const Tensor& shard(std::size_t t) const { return shards_.at(t); }
  const FusedTableState& state(std::size_t t) const { return states_.at(t); }

  /// Collective: this rank's bags of every table, [B_t, dim_t] (B_t of this rank's batch).
  /// Throws as EmbeddingBagCollection::forward on the rank whose batch is bad, DistError on
  /// the others.
  std::vector<Tensor> forward(const KeyedJaggedBatch& batch);

  /// Collective: the fused backward and optimizer step for this rank's batch (the one given
  /// to forward) and gradients [B_t, dim_t]. Throws as forward() and
  /// EmbeddingBagCollection::backward_and_step, before anything is sent or written.
  void backward_and_step(const KeyedJaggedBatch& batch, const std::vector<Tensor>& grad_outputs);

  /// Collective: table t whole, on every rank (for tests and small tables).
  Tensor gather_table(std::size_t t) const;
  /// Collective: the optimizer state tensor `key` of table t whole ("sum", "exp_avg", ...; see
  /// FusedTableState), and the table's step count. Throws ValueError for a key the optimizer
  /// does not keep.
  Tensor gather_state(std::size_t t, const std::string& key) const;
  std::int64_t step_count(std::size_t t) const;

  /// Collective: writes this rank's shards and state to dir/shard-<rank>-of-<size>-<step>
  /// .safetensors and, once every rank has written, rank 0 replaces dir/manifest.json
  /// (atomically: the manifest names the complete set; older shard files are removed after).
  /// Throws IoError (on every rank: a failed write on one is reported on all).
  void save(const std::string& dir) const;
  /// Collective: reads a checkpoint written by save() on any number of ranks and takes this
  /// rank's rows of every table (and their optimizer state) from whichever shard files hold
  /// them; tables, plans' row counts and optimizer must match. Throws FormatError / IoError
  /// (then nothing changed, on any rank).
  void load(const std::string& dir);

 private:
  struct Exchange;
  Communicator comm_;
  std::vector<EmbeddingBagConfig> configs_;
  std::vector<ShardingPlan> plans_;
  FusedOptimizerOptions optimizer_;
  RowWisePooling pooling_;
  std::vector<std::int64_t> begin_;
  std::vector<std::int64_t> end_;
  std::vector<Tensor> shards_;
  std::vector<FusedTableState> states_;
};

}  // namespace emb::dist
