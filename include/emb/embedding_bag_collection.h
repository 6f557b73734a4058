// emb/embedding_bag_collection.h — several EmbeddingBag tables looked up, trained and updated in
// one call each (TorchRec's EmbeddingBagCollection, FBGEMM's table-batched embedding).
//
//   emb::EmbeddingBagCollection ebc(
//       {emb::EmbeddingBagConfig("user", 100000, 64),
//        emb::EmbeddingBagConfig("item", 50000, 32).mode(emb::EmbeddingBagMode::kMean)},
//       emb::optim::AdagradOptions(0.1));
//   emb::KeyedJaggedBatch batch;
//   batch.add("user", user_ids, user_offsets).add("item", item_ids, item_offsets);
//   std::vector<emb::Tensor> out = ebc.forward(batch);   // out[t] [B_t, dim_t]
//   ebc.backward_and_step(batch, grad_outputs);          // grad_outputs[t] [B_t, dim_t]
//
// Every table gives exactly what an EmbeddingBag module on it gives (sparse gradients, bags
// given by offsets without include_last_offset), and the fused step exactly what the emb
// optimizer of the same kind gives when it steps that module alone: the collection only changes
// how the work is scheduled (one pass of the thread pool over every (table, bag) pair, one over
// every (table, row) of the update), never the arithmetic. Results do not depend on the thread
// count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "emb/dtype.h"
#include "emb/embedding_bag.h"
#include "emb/generator.h"
#include "emb/optim/adagrad.h"
#include "emb/optim/adam.h"
#include "emb/optim/rowwise_adagrad.h"
#include "emb/optim/sgd.h"
#include "emb/sparse_grad.h"
#include "emb/tensor.h"

namespace emb {

/// One table of a collection: its name (the key of its feature in a batch), size, dtype and
/// pooling mode; optionally the initial table (shared, as EmbeddingBagOptions::_weight).
class EmbeddingBagConfig {
 public:
  EmbeddingBagConfig(std::string name, std::int64_t num_embeddings, std::int64_t embedding_dim)
      : name_(std::move(name)), num_embeddings_(num_embeddings), embedding_dim_(embedding_dim) {}
  /// Default kSum (TorchRec's default; EmbeddingBag's is kMean).
  EmbeddingBagConfig& mode(EmbeddingBagMode v) {
    mode_ = v;
    return *this;
  }
  /// float32 (default), float64, float16 or bfloat16; training needs float32 or float64.
  EmbeddingBagConfig& dtype(DType v) {
    dtype_ = v;
    return *this;
  }
  /// A [num_embeddings, embedding_dim] table of the config's dtype, used (shared) as is.
  EmbeddingBagConfig& weight(Tensor v) {
    weight_ = std::move(v);
    return *this;
  }
  const std::string& name() const { return name_; }
  std::int64_t num_embeddings() const { return num_embeddings_; }
  std::int64_t embedding_dim() const { return embedding_dim_; }
  EmbeddingBagMode mode() const { return mode_; }
  DType dtype() const { return dtype_; }
  const Tensor& weight() const { return weight_; }

 private:
  std::string name_;
  std::int64_t num_embeddings_;
  std::int64_t embedding_dim_;
  EmbeddingBagMode mode_ = EmbeddingBagMode::kSum;
  DType dtype_ = DType::kFloat32;
  Tensor weight_;
};

/// The ids of one batch for every table of a collection (TorchRec's KeyedJaggedTensor, one
/// jagged feature per key): feature t has ids [n_t] int32|int64 and offsets [B_t] int32|int64,
/// the start of each bag (as EmbeddingBag's offsets: [0, 2, 2, 5] over 6 ids -> bags of 2, 0, 3
/// and 1 ids). Keys are the table names, in the collection's order; B_t may differ per table.
struct KeyedJaggedBatch {
  std::vector<std::string> keys;
  std::vector<Tensor> ids;
  std::vector<Tensor> offsets;

  /// Appends one feature; returns *this for chaining.
  KeyedJaggedBatch& add(std::string key, Tensor feature_ids, Tensor feature_offsets) {
    keys.push_back(std::move(key));
    ids.push_back(std::move(feature_ids));
    offsets.push_back(std::move(feature_offsets));
    return *this;
  }
  std::size_t size() const { return keys.size(); }
};

/// The sparse optimizer fused into a collection's step, with the emb optimizers' options and
/// arithmetic: SGD (no momentum, no weight decay: PyTorch refuses weight decay on sparse
/// gradients and a momentum buffer is not sparse), Adagrad (no weight decay, as PyTorch),
/// RowWiseAdagrad, and lazy Adam / AdamW: AdamOptions means optim::LazyAdam, AdamWOptions
/// optim::LazyAdamW (all options).
using FusedOptimizerOptions =
    std::variant<optim::SGDOptions, optim::AdagradOptions, optim::RowWiseAdagradOptions,
                 optim::AdamOptions, optim::AdamWOptions>;

/// "SGD", "Adagrad", "RowWiseAdagrad", "LazyAdam" or "LazyAdamW".
const char* fused_optimizer_name(const FusedOptimizerOptions& options);

/// The optimizer state of one table (or of one shard of it): the number of steps taken and the
/// state tensors, named and shaped as the emb optimizer of the same kind holds them: Adagrad
/// "sum" [rows, dim]; RowWiseAdagrad "sum" [rows]; LazyAdam(W) "exp_avg", "exp_avg_sq" (and
/// with amsgrad "max_exp_avg_sq") [rows, dim]; none for SGD.
struct FusedTableState {
  std::int64_t step = 0;
  std::map<std::string, Tensor> tensors;
};

class EmbeddingBagCollection {
 public:
  /// Tables drawn from N(0, 1) with `generator` in config order (each exactly as an
  /// EmbeddingBag of that size would draw it; then converted to its dtype), or the configs'
  /// given weights. Throws ValueError (no tables, empty or duplicate names, negative sizes, a
  /// bad mode or dtype, a given weight of the wrong shape or dtype, optimizer options the
  /// optimizer's constructor would refuse or that the fused step does not support).
  EmbeddingBagCollection(std::vector<EmbeddingBagConfig> tables, FusedOptimizerOptions optimizer,
                         Generator& generator = default_generator());

  std::size_t num_tables() const { return configs_.size(); }
  const EmbeddingBagConfig& config(std::size_t t) const { return configs_.at(t); }
  const Tensor& weight(std::size_t t) const { return weights_.at(t); }
  const FusedTableState& state(std::size_t t) const { return states_.at(t); }
  const FusedOptimizerOptions& optimizer() const { return optimizer_; }

  /// Pools every table's bags: out[t] = embedding_bag(batch.ids[t], weight(t),
  /// batch.offsets[t], mode(t)), [B_t, dim_t], bitwise.
  /// Throws ValueError (keys not the table names in order, a feature's ids or offsets invalid as
  /// embedding_bag would find them; the message names the table), IndexError (an id out of
  /// range, naming the table, the position and the value).
  std::vector<Tensor> forward(const KeyedJaggedBatch& batch) const;

  /// Each table's sparse weight gradient for a forward on batch whose outputs received
  /// grad_outputs[t] [B_t, dim_t] (the table's dtype): what embedding_bag_sparse_backward
  /// gives. Throws as forward(), ValueError for grad_outputs of the wrong count, shape or dtype,
  /// NotImplementedError for a table in mode max (no sparse gradient, as PyTorch).
  std::vector<SparseGrad> backward(const KeyedJaggedBatch& batch,
                                   const std::vector<Tensor>& grad_outputs) const;

  /// One fused optimizer step with one sparse gradient per table (as backward() returns them):
  /// each table updated as the emb optimizer of the same kind updates it when stepped with that
  /// gradient. Throws ValueError (wrong count, a gradient of another shape or dtype, a table that
  /// is not float32/float64) before changing any table or state.
  void step(const std::vector<SparseGrad>& grads);

  /// backward() then step(), fused: no gradient is materialized, the update runs in one pass
  /// over every (table, row). Same result, bitwise. Throws as both, before any write.
  void backward_and_step(const KeyedJaggedBatch& batch, const std::vector<Tensor>& grad_outputs);

 private:
  std::vector<EmbeddingBagConfig> configs_;
  std::vector<Tensor> weights_;
  std::vector<FusedTableState> states_;
  FusedOptimizerOptions optimizer_;
};

}  // namespace emb
