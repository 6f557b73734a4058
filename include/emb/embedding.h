// emb/embedding.h — nn.Embedding: a lookup table from integer ids to rows, with its gradients.
//
//   emb::Embedding table(emb::EmbeddingOptions(10, 3).padding_idx(0));
//   emb::Tensor ids = emb::Tensor::from_vector<std::int64_t>({1, 2, 4, 5, 4, 3, 2, 9}, {2, 4});
//   emb::Tensor out = table(ids);                   // [2, 4, 3]
//   table.backward(ids, grad_out);                  // grad_out [2, 4, 3] -> table.weight().grad()
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "emb/generator.h"
#include "emb/lookup_options.h"
#include "emb/parameter.h"
#include "emb/sparse_grad.h"
#include "emb/tensor.h"

namespace emb {

namespace optim {
class Optimizer;
}

// ---------------------------------------------------------------------------------------------
// Options (named as in libtorch's C++ frontend)

/// Options of the functional embedding(): padding_idx, max_norm, norm_type, scale_grad_by_freq,
/// sparse.
struct EmbeddingFuncOptions : LookupOptions<EmbeddingFuncOptions> {};

/// Options of the Embedding module: the table size, the lookup options and an optional _weight.
class EmbeddingOptions : public TableOptions<EmbeddingOptions, LookupOptions<EmbeddingOptions>> {
 public:
  using TableOptions::TableOptions;
};

/// Options of Embedding::from_pretrained: freeze (default true) and the lookup options.
class EmbeddingFromPretrainedOptions
    : public PretrainedOptions<EmbeddingFromPretrainedOptions,
                               LookupOptions<EmbeddingFromPretrainedOptions>> {};

// ---------------------------------------------------------------------------------------------
// Functional layer: validates, then runs the kernels. A call that throws changed nothing.

/// Looks up rows: out[i..] = weight[input[i..]]. With max_norm, the looked-up rows of weight
/// are first renormalized in place (embedding_renorm_); ids that share memory with weight are
/// copied before that write, so the lookup uses them as they were.
///   input [*] int32|int64, weight [num, dim] any dtype -> out [*, dim] (weight's dtype)
/// Throws ValueError (weight not 2-D, index dtype), IndexError (id out of range, padding_idx).
Tensor embedding(const Tensor& input, const Tensor& weight,
                 const EmbeddingFuncOptions& options = {});

/// Renormalizes in place each distinct row k named by indices whose norm_type-norm exceeds
/// max_norm (strictly): weight[k] *= max_norm / (norm + 1e-7). Every id is validated before
/// any row is touched.
///   weight [num, dim] floating, indices [*] int32|int64
void embedding_renorm_(const Tensor& weight, const Tensor& indices, double max_norm,
                       double norm_type);

/// Dense gradient of the lookup: grad[k] = sum over positions i with input[i] == k (k not the
/// padding row) of grad_output[i] (divided by k's count in input with scale_grad_by_freq),
/// accumulated in input order, like PyTorch.
///   grad_output [*, dim] floating, indices [*] int32|int64 -> grad [num_weights, dim]
Tensor embedding_dense_backward(const Tensor& grad_output, const Tensor& indices,
                                std::int64_t num_weights, std::optional<std::int64_t> padding_idx,
                                bool scale_grad_by_freq);

/// Sparse gradient of the lookup: one row per non-padding position, in input order
/// (uncoalesced, like PyTorch). Unlike PyTorch, scale_grad_by_freq is supported: each row is
/// divided by its id's count in the call.
///   grad_output [*, dim] floating, indices [*] int32|int64 -> SparseGrad of [num_weights, dim]
SparseGrad embedding_sparse_backward(const Tensor& grad_output, const Tensor& indices,
                                     std::int64_t num_weights,
                                     std::optional<std::int64_t> padding_idx,
                                     bool scale_grad_by_freq);

// ---------------------------------------------------------------------------------------------
// Module
//
// Threads: calls that only read the table (forward without max_norm, to_string) may run
// concurrently on one module. Calls that write it need the caller's synchronisation: forward
// with max_norm (renormalizes rows in place), backward (accumulates into the same gradient),
// zero_grad, reset_parameters, and optimizer steps over its parameter (docs/ROBUSTNESS.md).

class Embedding {
 public:
  /// A [num_embeddings, embedding_dim] float32 table drawn from N(0, 1) with the default
  /// generator (or options._weight(), shared, untouched). The padding row is zeroed.
  /// Throws ValueError (negative or overflowing sizes, _weight shape), IndexError (padding_idx).
  explicit Embedding(const EmbeddingOptions& options);
  Embedding(const EmbeddingOptions& options, Generator& generator);

  /// A module around a given 2-D table (shared, padding row untouched); frozen unless
  /// options.freeze(false). Integer tables work too (frozen: they can have no gradient).
  static Embedding from_pretrained(const Tensor& embeddings,
                                   const EmbeddingFromPretrainedOptions& options = {});

  /// input [*] int32|int64 -> [*, embedding_dim]; see embedding().
  Tensor forward(const Tensor& input);
  Tensor operator()(const Tensor& input) { return forward(input); }
  /// Accumulates the weight's gradient for a forward on `input` whose output received
  /// grad_output [*input.shape, embedding_dim]: dense or sparse per options().sparse().
  /// A frozen weight gets no gradient (its arguments are still validated).
  void backward(const Tensor& input, const Tensor& grad_output);

  /// One training step without a materialized gradient: bit for bit what
  ///   table.backward(input, grad_output);  optimizer.step();
  /// does to the weight and its optimizer state, for a module with sparse(true) (padding_idx and
  /// scale_grad_by_freq as in backward()); see EmbeddingBag::fused_backward_step. Optimizers: SGD
  /// without momentum, Adagrad, RowWiseAdagrad, SparseAdam, LazyAdam, LazyAdamW. Other parameters of the optimizer are not stepped.
  ///   input [*] int32|int64, grad_output [*input.shape, embedding_dim]
  /// Throws as backward() and as EmbeddingBag::fused_backward_step, before anything is written.
  void fused_backward_step(const Tensor& input, const Tensor& grad_output,
                           optim::Optimizer& optimizer);

  /// Redraws the weight from N(0, 1) and zeroes the padding row.
  void reset_parameters();
  void reset_parameters(Generator& generator);

  const Tensor& weight() const { return weight_.data(); }
  Parameter& parameter() { return weight_; }
  const Parameter& parameter() const { return weight_; }
  const EmbeddingOptions& options() const { return options_; }
  /// The normalized padding row (non-negative), if any.
  std::optional<std::int64_t> padding_idx() const { return options_.padding_idx(); }
  void zero_grad() { weight_.zero_grad(); }

  /// PyTorch's repr: "Embedding(10, 3, padding_idx=0)".
  std::string to_string() const;

 private:
  Embedding(const EmbeddingOptions& options, Generator* generator);
  EmbeddingFuncOptions func_options() const;

  EmbeddingOptions options_;
  Parameter weight_;
};

std::ostream& operator<<(std::ostream& os, const Embedding& m);

}  // namespace emb
