// emb/embedding_bag.h — nn.EmbeddingBag: the sum, mean or max of bags of looked-up rows.
//
// A bag is a run of ids; offsets say where each bag starts. A 2-D input [B, N] is B bags of N ids.
//   emb::EmbeddingBag bag(emb::EmbeddingBagOptions(10, 3).mode(emb::EmbeddingBagMode::kSum));
//   emb::Tensor ids = emb::Tensor::from_vector<std::int64_t>({1, 2, 4, 5, 4, 3, 2, 9}, {8});
//   emb::Tensor offsets = emb::Tensor::from_vector<std::int64_t>({0, 4}, {2});
//   emb::Tensor out = bag(ids, offsets);            // [2, 3]: rows 1+2+4+5 and 4+3+2+9
//   bag.backward(ids, offsets, grad_out);           // grad_out [2, 3] -> bag.weight().grad()
//
// Bags with offsets [0, 2, 2, 5] over 6 ids: [ids 0-1], [], [ids 2-4], [id 5]. With
// include_last_offset the last offset closes the last bag instead ([0, 2, 2, 6] -> 3 bags) and
// must equal the number of ids.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "emb/generator.h"
#include "emb/lookup_options.h"
#include "emb/parameter.h"
#include "emb/sparse_grad.h"
#include "emb/tensor.h"

namespace emb {

namespace optim {
class Optimizer;
}

/// How a bag's rows are pooled. PyTorch's mode ints: kSum = 0, kMean = 1, kMax = 2.
enum class EmbeddingBagMode { kSum, kMean, kMax };

/// "sum", "mean", "max".
const char* mode_name(EmbeddingBagMode mode);

// ---------------------------------------------------------------------------------------------
// Options (named as in libtorch's C++ frontend)

/// The lookup options plus the two that only bags have: mode (default kMean, as in PyTorch) and
/// include_last_offset.
template <typename Derived>
class BagOptions : public LookupOptions<Derived> {
 public:
  /// kSum, kMean (the default) or kMax.
  Derived& mode(EmbeddingBagMode v) {
    mode_ = v;
    return static_cast<Derived&>(*this);
  }
  EmbeddingBagMode mode() const { return mode_; }
  /// offsets has B + 1 entries, the last one equal to the number of ids (CSR layout).
  /// Ignored for 2-D input, as in PyTorch 2.x.
  Derived& include_last_offset(bool v) {
    include_last_offset_ = v;
    return static_cast<Derived&>(*this);
  }
  bool include_last_offset() const { return include_last_offset_; }

  /// Takes the lookup options, mode and include_last_offset from another options object.
  template <typename Other>
  Derived& bag_options(const BagOptions<Other>& o) {
    mode_ = o.mode();
    include_last_offset_ = o.include_last_offset();
    return this->lookup_options(o);
  }

 private:
  EmbeddingBagMode mode_ = EmbeddingBagMode::kMean;
  bool include_last_offset_ = false;
};

/// Options of the functional embedding_bag().
struct EmbeddingBagFuncOptions : BagOptions<EmbeddingBagFuncOptions> {};

/// Options of the EmbeddingBag module: the table size, the bag options and an optional _weight.
class EmbeddingBagOptions
    : public TableOptions<EmbeddingBagOptions, BagOptions<EmbeddingBagOptions>> {
 public:
  using TableOptions::TableOptions;
};

/// Options of EmbeddingBag::from_pretrained: freeze (default true) and the bag options.
class EmbeddingBagFromPretrainedOptions
    : public PretrainedOptions<EmbeddingBagFromPretrainedOptions,
                               BagOptions<EmbeddingBagFromPretrainedOptions>> {};

// ---------------------------------------------------------------------------------------------
// Functional layer: validates everything, then (max_norm) renormalizes, then pools. A call that
// throws changed nothing.
//
// Shapes: input [n] with offsets [B] (or [B + 1] with include_last_offset), or input [B, N]
// without offsets; weight [num, dim]; per_sample_weights has input's shape -> out [B, dim].
// Index dtypes int32|int64 (input and offsets may differ); weight float32|float64|float16|
// bfloat16; per_sample_weights the weight's dtype.
//
// Numerics (bag b, its non-padding positions i in order):
//   sum   out[b] = acc, acc = acc + W[ids[i]]; with per_sample_weights, rounded as ATen rounds:
//         acc = fma(W[ids[i]], psw[i], acc) in float32 without padding_idx, otherwise
//         acc = acc + W[ids[i]] * psw[i] (float64, any padding_idx; 16-bit types: both agree)
//   mean  out[b] = T(sum) / count  (true division; count = number of non-padding ids; 0 -> 0)
//   max   out[b][d] = first largest W[ids[i]][d]; a NaN wins only as a bag's first element
// float16/bfloat16 accumulate in float32 and round once; float64 accumulates in float64.
// Empty and all-padding bags give zeros.
//
// Throws ValueError (ranks, shapes, dtypes, offsets not starting at 0 / decreasing / past the
// end, include_last_offset not closing at the end, mode max with sparse or scale_grad_by_freq),
// IndexError (an id or padding_idx out of range), NotImplementedError (per_sample_weights with
// mode mean or max).

/// What the pooling computed, with ATen's _embedding_bag auxiliaries (all int64):
///   output      [B, dim]  the pooled rows
///   offset2bag  [n]       the bag of each position: offsets [0, 2, 2, 5], n = 6 -> [0,0,2,2,2,3]
///   bag_size    [B]       non-padding ids per bag (ATen zeroes it in mode sum; emb does not)
///   max_indices [B, dim]  mode max: the row that won each element (0 for empty bags);
///                         undefined in modes sum and mean (ATen returns a copy of bag_size)
struct EmbeddingBagResult {
  Tensor output;
  Tensor offset2bag;
  Tensor bag_size;
  Tensor max_indices;
};

/// Pools bags of rows of weight; see above.
///   input [n] | [B, N], weight [num, dim], offsets [B] | [B + 1] | undefined -> out [B, dim]
Tensor embedding_bag(const Tensor& input, const Tensor& weight, const Tensor& offsets = {},
                     const EmbeddingBagFuncOptions& options = {},
                     const Tensor& per_sample_weights = {});

/// embedding_bag() written into the caller's out [B, dim] (the weight's dtype, writable, sharing
/// no memory with weight, input, offsets or per_sample_weights), checked before anything is
/// written. Modes sum and max allocate nothing up to 15 bags (beyond: the B + 1 bag bounds, as
/// int64); mode mean also its B divisors; max_norm also what the renorm takes. Throws as
/// embedding_bag(), and ValueError for a bad out.
void embedding_bag_out(const Tensor& input, const Tensor& weight, const Tensor& offsets,
                       const Tensor& out, const EmbeddingBagFuncOptions& options = {},
                       const Tensor& per_sample_weights = {});

/// embedding_bag() with the auxiliary outputs the backward of mode max needs.
EmbeddingBagResult embedding_bag_forward(const Tensor& input, const Tensor& weight,
                                         const Tensor& offsets = {},
                                         const EmbeddingBagFuncOptions& options = {},
                                         const Tensor& per_sample_weights = {});

/// Dense weight gradient of embedding_bag for an output that received grad_output [B, dim].
/// Same input, offsets, options and per_sample_weights as the forward; mode max also needs the
/// forward's max_indices [B, dim]. For each non-padding position i of bag b, in input order:
///   grad[ids[i]] += s_i * grad_output[b],
///   s_i = psw[i] (or 1) / count(ids[i]) (with scale_grad_by_freq) / bag_size[b] (mode mean)
/// with s_i computed in float64 and rounded to the weight dtype (float32/float64: one fused
/// multiply-add, as ATen's axpy). Mode max: grad[max_indices[b][d]][d] += grad_output[b][d] over
/// non-empty bags in order. Unlike PyTorch's CPU kernel, scale_grad_by_freq divides by each id's
/// own count (pytorch#190063).
/// Order: emb adds an id's terms in input order (deterministic, whatever the thread count).
/// PyTorch adds them in the order of its unstable sort of the ids, which is input order only
/// when there are at most 16 ids; beyond that, an id with several terms (2 or more when they are
/// scaled by psw, mean or scale_grad_by_freq, 3 or more otherwise) can differ from PyTorch's by
/// the rounding of a reordered sum (|diff| <= 2 (k + 2) eps sum |terms| for k terms); given
/// PyTorch's order, the result is bitwise PyTorch's (docs/PARITY.md).
///   -> [num_weights, dim]
/// Throws as embedding_bag(), and ValueError for a grad_output or max_indices of the wrong
/// shape or dtype, IndexError for a max_indices entry out of range.
Tensor embedding_bag_dense_backward(const Tensor& grad_output, const Tensor& input,
                                    const Tensor& offsets, const Tensor& max_indices,
                                    std::int64_t num_weights,
                                    const EmbeddingBagFuncOptions& options,
                                    const Tensor& per_sample_weights = {});

/// Sparse weight gradient (modes sum and mean): one row per non-padding position, in input
/// order, value grad_output[b] (times psw[i]; mode mean times T(1 / bag_size[b])), uncoalesced,
/// like PyTorch. Unlike PyTorch, scale_grad_by_freq is supported (each row times T(1 / count)).
///   -> SparseGrad of [num_weights, dim]
/// Throws as embedding_bag_dense_backward(); ValueError for mode max.
SparseGrad embedding_bag_sparse_backward(const Tensor& grad_output, const Tensor& input,
                                         const Tensor& offsets, std::int64_t num_weights,
                                         const EmbeddingBagFuncOptions& options,
                                         const Tensor& per_sample_weights = {});

/// The dense or sparse weight gradient, as options.sparse() says.
std::variant<Tensor, SparseGrad> embedding_bag_backward(const Tensor& grad_output,
                                                        const Tensor& input, const Tensor& offsets,
                                                        const Tensor& max_indices,
                                                        std::int64_t num_weights,
                                                        const EmbeddingBagFuncOptions& options,
                                                        const Tensor& per_sample_weights = {});

/// Gradient of per_sample_weights (mode sum): dpsw[i] = dot(grad_output[bag(i)], weight[ids[i]]),
/// 0 at padding positions; weight is the table as the forward used it (after any renorm). The
/// dot product is ATen's: float32/float64 add the rounded products left to right (the reference
/// BLAS sdot/ddot ATen calls), float16 rounds each product and sum to half, bfloat16 is computed
/// as float32 and rounded once.
///   grad_output [B, dim], weight [num, dim], input [n] | [B, N] -> [input's shape]
/// Throws as embedding_bag(); NotImplementedError for modes mean and max.
Tensor embedding_bag_per_sample_weights_backward(const Tensor& grad_output, const Tensor& weight,
                                                 const Tensor& input, const Tensor& offsets,
                                                 const EmbeddingBagFuncOptions& options);

// ---------------------------------------------------------------------------------------------
// Module
//
// Threads: as for Embedding, concurrent forwards without max_norm are safe; forward with
// max_norm, backward, zero_grad, reset_parameters and optimizer steps need the caller's
// synchronisation (docs/ROBUSTNESS.md).

class EmbeddingBag {
 public:
  /// A [num_embeddings, embedding_dim] float32 table drawn from N(0, 1) with the default
  /// generator (or options._weight(), shared, untouched). The padding row is zeroed (libtorch
  /// leaves it random, a bug emb does not copy).
  /// Throws ValueError (negative or overflowing sizes, _weight shape, mode max with sparse or
  /// scale_grad_by_freq), IndexError (padding_idx).
  explicit EmbeddingBag(const EmbeddingBagOptions& options);
  EmbeddingBag(const EmbeddingBagOptions& options, Generator& generator);

  /// A module around a given 2-D table (shared, padding row untouched); frozen unless
  /// options.freeze(false).
  static EmbeddingBag from_pretrained(const Tensor& embeddings,
                                      const EmbeddingBagFromPretrainedOptions& options = {});

  /// input [n] with offsets, or [B, N] without -> [B, embedding_dim]; see embedding_bag().
  Tensor forward(const Tensor& input, const Tensor& offsets = {},
                 const Tensor& per_sample_weights = {});
  Tensor operator()(const Tensor& input, const Tensor& offsets = {},
                    const Tensor& per_sample_weights = {}) {
    return forward(input, offsets, per_sample_weights);
  }
  /// Accumulates the weight's gradient for a forward on the same arguments whose output received
  /// grad_output [B, embedding_dim] (dense or sparse per options().sparse(); nothing for a frozen
  /// weight) and returns the gradient of per_sample_weights when it is given (else undefined).
  /// Mode max finds the winning rows again in the current weight, so call it before the weight
  /// changes. A call that throws accumulates nothing.
  Tensor backward(const Tensor& input, const Tensor& offsets, const Tensor& grad_output,
                  const Tensor& per_sample_weights = {});

  /// One training step without a materialized gradient: the sparse weight gradient backward()
  /// would compute for these arguments, applied at once by optimizer to the rows it touches.
  /// Bit for bit what
  ///   bag.backward(input, offsets, grad_output, per_sample_weights);  optimizer.step();
  /// does to the weight and to its optimizer state (step count included), in one pass: each
  /// touched row's gradient is summed from grad_output in input order (as SparseGrad::coalesce)
  /// and updated by the optimizer's row kernel, rows split over threads. Other parameters of the
  /// optimizer are not stepped. Needs sparse(true); modes sum (with or without
  /// per_sample_weights) and mean; padding_idx and scale_grad_by_freq as in backward().
  /// Optimizers: SGD without momentum, Adagrad, RowWiseAdagrad, SparseAdam, LazyAdam, LazyAdamW.
  ///   input [n] + offsets [B] | [B + 1], or [B, N]; grad_output [B, embedding_dim]
  ///   -> the gradient of per_sample_weights (its shape) when given, else undefined
  /// Returns the per-sample-weight gradient computed from the weight before the update. A frozen
  /// weight is left alone (the arguments are still checked; the optimizer is not consulted).
  /// Throws as backward(), and before anything is written: ValueError (the module is not sparse,
  /// its weight is not one of optimizer's parameters or already holds a gradient, or step()
  /// would refuse it: dtype, read-only, a state that no longer fits), NotImplementedError (an
  /// optimizer or option without a fused update, e.g. SGD with momentum, Adagrad with
  /// weight_decay, Adam). A call that throws changes neither the weight nor the optimizer's state.
  ///   emb::optim::RowWiseAdagrad opt({&bag.parameter()}, emb::optim::RowWiseAdagradOptions(0.1));
  ///   Tensor out = bag(ids, offsets);
  ///   bag.fused_backward_step(ids, offsets, grad_of(out), opt);
  Tensor fused_backward_step(const Tensor& input, const Tensor& offsets, const Tensor& grad_output,
                             optim::Optimizer& optimizer, const Tensor& per_sample_weights = {});

  /// Redraws the weight from N(0, 1) and zeroes the padding row.
  void reset_parameters();
  void reset_parameters(Generator& generator);

  const Tensor& weight() const { return weight_.data(); }
  Parameter& parameter() { return weight_; }
  const Parameter& parameter() const { return weight_; }
  const EmbeddingBagOptions& options() const { return options_; }
  EmbeddingBagMode mode() const { return options_.mode(); }
  /// The normalized padding row (non-negative), if any.
  std::optional<std::int64_t> padding_idx() const { return options_.padding_idx(); }
  void zero_grad() { weight_.zero_grad(); }

  /// PyTorch 2.x's repr: "EmbeddingBag(10, 3, mode='sum')".
  std::string to_string() const;

 private:
  EmbeddingBag(const EmbeddingBagOptions& options, Generator* generator);
  EmbeddingBagFuncOptions func_options() const;

  EmbeddingBagOptions options_;
  Parameter weight_;
};

std::ostream& operator<<(std::ostream& os, const EmbeddingBag& m);

}  // namespace emb
