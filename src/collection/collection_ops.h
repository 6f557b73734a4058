// What EmbeddingBagCollection and the sharded collection of emb::dist share: validating a keyed
// batch, pooling many (table, bag) pairs in one pass of the thread pool, and the fused sparse
// optimizer step over many (table, row) pairs. The arithmetic is the ordinary kernels' and the
// emb optimizers'; only the scheduling differs.
#pragma once

#include <cstdint>
#include <vector>

#include "emb/embedding_bag_collection.h"
#include "emb/tensor.h"

namespace emb::detail {

/// One validated feature: ids [n] (int32 | int64, each in range) and the B + 1 bag bounds.
struct FeaturePlan {
  Tensor ids;
  std::vector<std::int64_t> bounds;

  std::int64_t num_bags() const { return static_cast<std::int64_t>(bounds.size()) - 1; }
  std::int64_t n() const { return ids.numel(); }
};

/// Throws ValueError unless the configs make a collection (at least one table, distinct
/// non-empty names, sizes, mode, dtype, a given weight's shape and dtype).
void check_configs(const std::vector<EmbeddingBagConfig>& tables, const char* op);

/// Checks batch against the tables (keys equal to the names, in order; every feature valid for
/// embedding_bag on a table of num_embeddings rows). Throws naming `op` and the table.
std::vector<FeaturePlan> plan_batch(const char* op, const KeyedJaggedBatch& batch,
                                    const std::vector<EmbeddingBagConfig>& tables);

/// Checks grad_outputs against validated plans: one per table, [B_t, dim_t], the table's dtype.
void check_grad_outputs(const char* op, const std::vector<Tensor>& grad_outputs,
                        const std::vector<FeaturePlan>& plans,
                        const std::vector<EmbeddingBagConfig>& tables);

/// One pooling job: bags [0, num_bags) over rows of `table` (ids are row numbers of table,
/// validated), as the fast kernels pool them. out [num_bags, dim] of the table's dtype.
struct PoolJob {
  Tensor table;                      // [rows, dim]
  EmbeddingBagMode mode;             //
  const void* ids;                   // int32 | int64
  bool ids64;                        //
  const std::int64_t* bounds;        // [num_bags + 1]
  std::int64_t num_bags;             //
  const std::int64_t* mean_sizes;    // mode mean: the divisor of each bag; else null
  void* out;                         // [num_bags, dim]
};

/// Runs every job: one parallel pass over all (job, bag) pairs (contiguous ranges per thread).
void pool_all(const std::vector<PoolJob>& jobs);

/// One table's (or shard's) update: the uncoalesced sparse gradient, in input order.
/// Position j updates row rows[j] of weight with value grad[src[j]] — times bag_scale[src[j]]
/// (rounded as embedding_bag_sparse_backward rounds mode mean: T(A(g) * s)) when bag_scale is
/// given. grad [*, dim] and bag_scale [*] have the weight's dtype (float32 | float64).
struct UpdateJob {
  Tensor weight;                // [rows, dim]
  FusedTableState* state;       //
  const std::int64_t* rows;     // [n]
  const std::int64_t* src;      // [n]
  std::int64_t n;               //
  const void* grad;             //
  const void* bag_scale;        // or null
};

/// Throws ValueError unless the options are valid for the optimizer's constructor and
/// supported by the fused step (SGD without momentum and weight decay, Adagrad without weight
/// decay). `op` starts the message.
void check_fused_optimizer(const FusedOptimizerOptions& options, const char* op);

/// The initial state of a [rows, dim] table of dtype (float32 | float64).
FusedTableState initial_state(const FusedOptimizerOptions& options, std::int64_t rows,
                              std::int64_t dim, DType dtype);

/// Throws ValueError unless the weight can be trained (float32 | float64, writable) and its step
/// count can grow. Names op and the table.
void check_trainable(const Tensor& weight, const FusedTableState& state, const char* op,
                     const std::string& table);

/// One step of every job (each job's step count + 1, even when it has no positions), the rows
/// of all jobs updated in one parallel pass; each row gets exactly the arithmetic of the emb
/// optimizer of that kind stepping a sparse gradient with those positions (its row kernels,
/// kernels/optim_rows.h, on the job's positions grouped by row).
void fused_update(const FusedOptimizerOptions& options, const std::vector<UpdateJob>& jobs);

/// Mode mean's per-bag gradient scale T(1 / T(size)) (as embedding_bag_sparse_backward), [B]
/// of dtype; sizes[b] = 0 gives 0 (such a bag has no positions).
Tensor mean_bag_scale(const std::vector<std::int64_t>& sizes, DType dtype);

/// bag b's size bounds[b + 1] - bounds[b].
std::vector<std::int64_t> bag_sizes(const std::vector<std::int64_t>& bounds);

}  // namespace emb::detail
