// The functional EmbeddingBag ops: validate everything once (plan_bags), then call the kernels
// (fast ones where they exist, kernels/fast.h; the reference loops for the rest). Nothing is
// written before the last check has passed.
#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "bag_layout.h"
#include "emb/embedding.h"
#include "emb/embedding_bag.h"
#include "index_check.h"
#include "kernels/fast.h"
#include "kernels/ref/embedding_bag_ref.h"
#include "module_common.h"

namespace emb {

namespace {

using detail::visit_floating;
using detail::visit_ids;

// The B + 1 bounds of the bags: bag b = positions [bounds[b], bounds[b + 1]). Held inline for
// up to kInline - 1 bags, so that a serving call's few bags allocate nothing; on the heap beyond.
class BagBounds {
 public:
  // Room for `size` bounds, their values unset.
  void resize(std::size_t size) {
    if (size > kInline) heap_.resize(size);
    size_ = size;
  }
  std::int64_t* data() { return size_ > kInline ? heap_.data() : inline_.data(); }
  const std::int64_t* data() const { return size_ > kInline ? heap_.data() : inline_.data(); }
  std::size_t size() const { return size_; }
  std::int64_t operator[](std::int64_t i) const { return data()[i]; }

 private:
  static constexpr std::size_t kInline = 16;
  std::array<std::int64_t, kInline> inline_;
  std::vector<std::int64_t> heap_;
  std::size_t size_ = 0;
};

// A validated bag layout: the ids (the input itself, read flat) and the bounds of the bags.
struct BagPlan {
  const Tensor* ids = nullptr;    // the input: [n] or [B, N] int32 | int64
  BagBounds bounds;               // [B + 1]
  std::int64_t padding_idx = -1;  // normalized; -1 for none

  std::int64_t num_bags() const { return static_cast<std::int64_t>(bounds.size()) - 1; }
  std::int64_t n() const { return ids->numel(); }
};

std::string str(std::int64_t v) {
  return std::to_string(v);
}

// What one call checks about the bag arguments.
struct PlanRequest {
  const char* op;
  const Tensor& input;
  const Tensor& offsets;
  std::int64_t num_rows;
  const EmbeddingBagFuncOptions& options;
  const Tensor* per_sample_weights;  // null: not checked here
  DType value_dtype;                 // the dtype per_sample_weights must have
  bool check_ids = true;             // false: the ids' range is left to the kernel
};

// Offsets (any index dtype) as int64.
std::vector<std::int64_t> offsets_as_int64(const Tensor& offsets) {
  return visit_ids(
      offsets, [&](const auto* p) { return std::vector<std::int64_t>(p, p + offsets.numel()); });
}

// An op's name in messages: a std::string is made only when a message is (a call that passes
// its checks allocates nothing for it).
struct OpName {
  const char* name;
};
std::string operator+(OpName op, const char* s) {
  return std::string(op.name) + s;
}

// Every check of the bag arguments, in the order PyTorch makes them; returns the layout.
BagPlan plan_bags(const PlanRequest& r) {
  const OpName op{r.op};
  const EmbeddingBagFuncOptions& o = r.options;
  detail::check_bag_mode(o.mode(), r.op);
  detail::check_index_dtype(r.input, r.op, "input");
  if (r.input.dim() != 1 && r.input.dim() != 2) {
    throw ValueError(op + ": input must be 1-D (with offsets) or 2-D [B, N], got shape " +
                     shape_to_string(r.input.shape()));
  }
  const bool two_d = r.input.dim() == 2;
  if (two_d && r.offsets.defined()) {
    throw ValueError(
        op + ": offsets must be undefined for 2-D input " + shape_to_string(r.input.shape()) +
        " (each row is a bag), got offsets of shape " + shape_to_string(r.offsets.shape()));
  }
  if (!two_d) {
    if (!r.offsets.defined()) {
      throw ValueError(op + ": 1-D input needs offsets (a 1-D int32 or int64 tensor), got none");
    }
    detail::check_index_dtype(r.offsets, r.op, "offsets");
    if (r.offsets.dim() != 1) {
      throw ValueError(op + ": offsets must be 1-D, got shape " +
                       shape_to_string(r.offsets.shape()));
    }
  }
  if (o.mode() == EmbeddingBagMode::kMax && o.scale_grad_by_freq()) {
    throw ValueError(op + ": mode max does not support scale_grad_by_freq");
  }
  if (o.mode() == EmbeddingBagMode::kMax && o.sparse()) {
    throw ValueError(op + ": mode max does not support sparse gradients");
  }
  if (r.per_sample_weights && r.per_sample_weights->defined()) {
    const Tensor& psw = *r.per_sample_weights;
    if (o.mode() != EmbeddingBagMode::kSum) {
      throw NotImplementedError(op +
                                ": per_sample_weights is only supported for mode sum, got mode " +
                                mode_name(o.mode()));
    }
    if (psw.dtype() != r.value_dtype) {
      throw ValueError(op + ": per_sample_weights has dtype " +
                       std::string(dtype_name(psw.dtype())) + ", expected " +
                       std::string(dtype_name(r.value_dtype)) + " (the weight's)");
    }
    if (psw.shape() != r.input.shape()) {
      throw ValueError(op + ": per_sample_weights has shape " + shape_to_string(psw.shape()) +
                       ", expected the input's shape " + shape_to_string(r.input.shape()));
    }
  }
  BagPlan plan;
  plan.padding_idx = detail::normalize_padding_idx(o.padding_idx(), r.num_rows, r.op);
  const std::int64_t n = r.input.numel();
  plan.ids = &r.input;
  if (two_d) {  // [B, N]: bag b = row b (include_last_offset does not apply)
    const std::int64_t rows = r.input.size(0);
    const std::int64_t cols = r.input.size(1);
    plan.bounds.resize(static_cast<std::size_t>(rows) + 1);
    for (std::int64_t b = 0; b <= rows; ++b) plan.bounds.data()[b] = b * cols;
  } else {
    const std::int64_t size = r.offsets.numel();
    if (o.include_last_offset() && size == 0) {
      throw ValueError(op +
                       ": include_last_offset needs at least 1 offset (the end of the last "
                       "bag), got none");
    }
    if (size == 0 && n > 0) {
      throw ValueError(op + ": offsets is empty but input has " + str(n) +
                       " indices (each index must belong to a bag)");
    }
    // The offsets are checked where they lie, then copied once into the bounds (n appended
    // unless they end with it).
    visit_ids(r.offsets, [&](const auto* off) {
      if (size > 0 && off[0] != 0) {
        throw ValueError(op + ": offsets[0] = " + str(off[0]) +
                         " must be 0 (the first bag starts at position 0)");
      }
      for (std::int64_t j = 1; j < size; ++j) {
        if (off[j] < off[j - 1] || off[j] > n) [[unlikely]] {
          if (off[j] < off[j - 1]) {
            throw ValueError(op + ": offsets[" + str(j) + "] = " + str(off[j]) +
                             " is smaller than offsets[" + str(j - 1) + "] = " + str(off[j - 1]));
          }
          throw ValueError(op + ": offsets[" + str(j) + "] = " + str(off[j]) +
                           " is past the end of the input (" + str(n) + " indices)");
        }
      }
      if (o.include_last_offset() && off[size - 1] != n) {
        throw ValueError(op + ": with include_last_offset, offsets[" + str(size - 1) + "] = " +
                         str(off[size - 1]) + " must equal the number of indices, " + str(n));
      }
      const bool append_n = !o.include_last_offset();
      plan.bounds.resize(static_cast<std::size_t>(size) + (append_n ? 1 : 0));
      std::copy(off, off + size, plan.bounds.data());
      if (append_n) plan.bounds.data()[size] = n;
    });
  }
  if (r.check_ids) detail::check_ids_in_range(r.input, r.num_rows, r.op, "input");
  return plan;
}

// o2b[i] = the bag of position i, for every i in [0, n) (the bounds cover them all).
void fill_offset2bag(const BagPlan& plan, std::int64_t* o2b) {
  for (std::int64_t b = 0; b < plan.num_bags(); ++b) {
    std::fill(o2b + plan.bounds[b], o2b + plan.bounds[b + 1], b);
  }
}

// offset2bag [n]: the bag of each position.
std::vector<std::int64_t> offset2bag_of(const BagPlan& plan) {
  std::vector<std::int64_t> o2b(static_cast<std::size_t>(plan.n()));
  fill_offset2bag(plan, o2b.data());
  return o2b;
}

// sizes[b] = the non-padding ids of bag b, for every b in [0, B).
void fill_bag_sizes(const BagPlan& plan, std::int64_t* sizes) {
  if (plan.padding_idx < 0) {  // no padding: the bags' lengths, without reading the ids
    for (std::int64_t b = 0; b < plan.num_bags(); ++b) {
      sizes[b] = plan.bounds[b + 1] - plan.bounds[b];
    }
    return;
  }
  visit_ids(*plan.ids, [&](const auto* ids) {
    for (std::int64_t b = 0; b < plan.num_bags(); ++b) {
      std::int64_t size = 0;
      for (std::int64_t i = plan.bounds[b]; i < plan.bounds[b + 1]; ++i) {
        size += ids[i] != plan.padding_idx;
      }
      sizes[b] = size;
    }
  });
}

// bag_size [B]: the non-padding ids of each bag.
std::vector<std::int64_t> bag_sizes_of(const BagPlan& plan) {
  std::vector<std::int64_t> sizes(static_cast<std::size_t>(plan.num_bags()));
  fill_bag_sizes(plan, sizes.data());
  return sizes;
}

// counts[k] = occurrences of id k among all positions (padding included).
std::vector<std::int64_t> id_counts(const Tensor& ids, std::int64_t num_rows) {
  std::vector<std::int64_t> counts(static_cast<std::size_t>(num_rows), 0);
  visit_ids(ids, [&](const auto* p) {
    for (std::int64_t i = 0; i < ids.numel(); ++i) ++counts[static_cast<std::size_t>(p[i])];
  });
  return counts;
}

// How bag_sum combines a row with its per-sample weight, as ref::bag_sum defines it (after
// ATen): fused without padding_idx except for float64, else multiply then add. (float16 and
// bfloat16 products are exact in float, so both forms agree there.)
template <typename T>
detail::fast::PswCombine psw_combine(std::int64_t padding_idx) {
  const bool fused = !std::is_same_v<T, double> && padding_idx < 0;
  return fused ? detail::fast::PswCombine::kFused : detail::fast::PswCombine::kUnfused;
}

// How the per-sample-weight gradient's dot rounds, as ref::bag_per_sample_weights_backward
// defines it (after ATen): the reference BLAS dot, unfused, for float32/float64 (and bfloat16,
// in float); float16 in float16 arithmetic.
template <typename T>
detail::fast::PswDot psw_grad_dot() {
  return std::is_same_v<T, Half> ? detail::fast::PswDot::kRoundEachStep
                                 : detail::fast::PswDot::kUnfused;
}

// Checks the weight of a forward (2-D, floating).
void check_weight(const Tensor& weight, const char* op) {
  detail::check_weight_2d(weight, op);
  detail::check_floating(weight, op, "weight");
}

// Checks grad_output of a backward: floating, [B, dim]; returns dim.
std::int64_t check_grad_output(const Tensor& grad_output, std::int64_t num_bags, const char* op,
                               std::int64_t expected_dim = -1) {
  detail::check_floating(grad_output, op, "grad_output");
  if (grad_output.dim() != 2 || grad_output.size(0) != num_bags ||
      (expected_dim >= 0 && grad_output.size(1) != expected_dim)) {
    throw ValueError(std::string(op) + ": grad_output has shape " +
                     shape_to_string(grad_output.shape()) + ", expected [" + str(num_bags) + ", " +
                     (expected_dim >= 0 ? str(expected_dim) : std::string("dim")) +
                     "] (one row per bag)");
  }
  return grad_output.size(1);
}

void check_num_weights(std::int64_t num_weights, std::int64_t dim, const char* op) {
  if (num_weights < 0) {
    throw ValueError(std::string(op) + ": num_weights = " + str(num_weights) + " is negative");
  }
  checked_numel({num_weights, dim}, op);
}

}  // namespace

void detail::check_bag_mode(EmbeddingBagMode mode, const char* op) {
  const auto code = static_cast<int>(mode);
  if (code < 0 || code > static_cast<int>(EmbeddingBagMode::kMax)) {
    throw ValueError(std::string(op) + ": mode " + str(code) +
                     " is not an EmbeddingBagMode (valid: 0 sum, 1 mean, 2 max)");
  }
}

void detail::check_embedding_bag_backward_args(const char* op, const Tensor& grad_output,
                                               const Tensor& input, const Tensor& offsets,
                                               std::int64_t num_weights,
                                               const EmbeddingBagFuncOptions& options,
                                               const Tensor& per_sample_weights) {
  detail::check_floating(grad_output, op, "grad_output");
  const std::int64_t dim_hint = grad_output.dim() == 2 ? grad_output.size(1) : 0;
  check_num_weights(num_weights, dim_hint, op);
  const BagPlan plan = plan_bags(
      {op, input, offsets, num_weights, options, &per_sample_weights, grad_output.dtype()});
  check_grad_output(grad_output, plan.num_bags(), op);
}

const char* mode_name(EmbeddingBagMode mode) {
  switch (mode) {
    case EmbeddingBagMode::kSum:
      return "sum";
    case EmbeddingBagMode::kMean:
      return "mean";
    case EmbeddingBagMode::kMax:
      return "max";
  }
  return "invalid";
}

namespace {

// The kernel of options.mode() on validated arguments: ids (the plan's, or a copy), psw null for
// none, bag_size mode mean's divisors, max_indices null where not wanted. checking_op: null, or
// (mode sum or mean, into a new out) the ids' range is not checked yet and the kernel checks it
// as it reads them, the error then thrown in checking_op's name.
void run_bags(const BagPlan& plan, const Tensor& ids, const Tensor& weight,
              const EmbeddingBagFuncOptions& options, const Tensor* psw,
              const std::int64_t* bag_size, std::int64_t* max_indices, const Tensor& out,
              const char* checking_op = nullptr) {
  const std::int64_t num_bags = plan.num_bags();
  const std::int64_t dim = weight.size(1);
  visit_floating(weight.dtype(), [&](auto tag) {
    using T = decltype(tag);
    visit_ids(ids, [&](const auto* p) {
      if (options.mode() == EmbeddingBagMode::kMax) {
        detail::fast::bag_max(weight.data<T>(), dim, p, plan.bounds.data(), num_bags,
                              plan.padding_idx, out.data<T>(), max_indices);
        return;
      }
      // Sum or mean (bag_size its divisors); the kernel checks the ids when asked to.
      const bool mean = options.mode() == EmbeddingBagMode::kMean;
      const std::int64_t rows = checking_op ? weight.size(0) : -1;
      if (!detail::fast::bag_sum_checked(weight.data<T>(), dim, p, plan.bounds.data(), num_bags,
                                         plan.padding_idx, psw ? psw->data<T>() : nullptr,
                                         psw_combine<T>(plan.padding_idx),
                                         mean ? bag_size : nullptr, out.data<T>(), rows)) {
        detail::throw_first_id_out_of_range(ids, weight.size(0), checking_op, "input");
      }
    });
  });
}

// The forward of validated arguments into out [B, dim]. aux: null, or the result that also gets
// offset2bag and bag_size (allocated here) and, in mode max, max_indices (allocated by the
// caller); without it the kernels skip what only those need. checking_op: as run_bags'.
void bag_compute(const BagPlan& plan, const Tensor& weight, const EmbeddingBagFuncOptions& options,
                 const Tensor& per_sample_weights, const Tensor& out, EmbeddingBagResult* aux,
                 const char* checking_op = nullptr) {
  const Tensor* psw = per_sample_weights.defined() ? &per_sample_weights : nullptr;
  if (!options.max_norm() && !aux && options.mode() != EmbeddingBagMode::kMean) {
    // A serving call: nothing to renorm, count or allocate.
    run_bags(plan, *plan.ids, weight, options, psw, nullptr, nullptr, out, checking_op);
    return;
  }
  Tensor ids = *plan.ids;
  Tensor psw_copy;
  if (options.max_norm()) {
    // Ids or weights that live inside the weight would change under the renorm: read them
    // first.
    if (ids.shares_storage_with(weight)) ids = ids.clone();
    if (psw && psw->shares_storage_with(weight)) {
      psw_copy = psw->clone();
      psw = &psw_copy;
    }
  }
  // The auxiliary outputs (and mode mean's divisors) written straight into their tensors.
  Tensor bag_size;
  if (aux || options.mode() == EmbeddingBagMode::kMean) {
    bag_size = Tensor::empty({plan.num_bags()}, DType::kInt64);
    fill_bag_sizes(plan, bag_size.data<std::int64_t>());
  }
  if (aux) {
    aux->offset2bag = detail::empty_reused({plan.n()}, DType::kInt64);
    fill_offset2bag(plan, aux->offset2bag.data<std::int64_t>());
    aux->bag_size = bag_size;
  }
  if (options.max_norm()) {
    embedding_renorm_(weight, ids, *options.max_norm(), options.norm_type());
  }
  const bool winners = aux && aux->max_indices.defined();
  run_bags(plan, ids, weight, options, psw,
           bag_size.defined() ? bag_size.data<std::int64_t>() : nullptr,
           winners ? aux->max_indices.data<std::int64_t>() : nullptr, out, checking_op);
}

// Every check of a forward's arguments but its output's, in PyTorch's order; the bag layout.
// check_ids false: the ids' range is left to the kernel.
BagPlan plan_forward(const char* op, const Tensor& input, const Tensor& weight,
                     const Tensor& offsets, const EmbeddingBagFuncOptions& options,
                     const Tensor& per_sample_weights, bool check_ids = true) {
  check_weight(weight, op);
  return plan_bags({op, input, offsets, weight.size(0), options, &per_sample_weights,
                    weight.dtype(), check_ids});
}

// Whether a forward into new outputs leaves the ids' range to the kernel: mode sum or mean (whose
// kernel checks the ids as it reads them, one pass over them, not two) without a renorm (which
// would write the weight first). On a bad id the new outputs, which nobody else holds, are
// dropped, so that nothing has changed.
bool kernel_checks_ids(const EmbeddingBagFuncOptions& options) {
  return !options.max_norm() && options.mode() != EmbeddingBagMode::kMax;
}

}  // namespace

// Everything is valid before an output is allocated, and the outputs are allocated before the
// renorm writes, so that nothing after it can fail.

void embedding_bag_out(const Tensor& input, const Tensor& weight, const Tensor& offsets,
                       const Tensor& out, const EmbeddingBagFuncOptions& options,
                       const Tensor& per_sample_weights) {
  const char* op = "embedding_bag_out";
  const BagPlan plan = plan_forward(op, input, weight, offsets, options, per_sample_weights);
  const std::int64_t prefix[] = {plan.num_bags()};
  detail::check_out(out, weight.dtype(), prefix, weight.size(1), op,
                    {&weight, &input, &offsets, &per_sample_weights},
                    {"weight", "input", "offsets", "per_sample_weights"});
  bag_compute(plan, weight, options, per_sample_weights, out, nullptr);
}

EmbeddingBagResult embedding_bag_forward(const Tensor& input, const Tensor& weight,
                                         const Tensor& offsets,
                                         const EmbeddingBagFuncOptions& options,
                                         const Tensor& per_sample_weights) {
  const char* op = "embedding_bag";
  const bool deferred = kernel_checks_ids(options);
  const BagPlan plan =
      plan_forward(op, input, weight, offsets, options, per_sample_weights, !deferred);
  const Shape shape{plan.num_bags(), weight.size(1)};
  EmbeddingBagResult r;
  r.output = detail::empty_reused(shape, weight.dtype());
  if (options.mode() == EmbeddingBagMode::kMax) {
    r.max_indices = detail::empty_reused(shape, DType::kInt64);
  }
  bag_compute(plan, weight, options, per_sample_weights, r.output, &r, deferred ? op : nullptr);
  return r;
}

Tensor embedding_bag(const Tensor& input, const Tensor& weight, const Tensor& offsets,
                     const EmbeddingBagFuncOptions& options, const Tensor& per_sample_weights) {
  const char* op = "embedding_bag";
  const bool deferred = kernel_checks_ids(options);
  const BagPlan plan =
      plan_forward(op, input, weight, offsets, options, per_sample_weights, !deferred);
  Tensor out = detail::empty_reused({plan.num_bags(), weight.size(1)}, weight.dtype());
  bag_compute(plan, weight, options, per_sample_weights, out, nullptr, deferred ? op : nullptr);
  return out;
}

Tensor embedding_bag_dense_backward(const Tensor& grad_output, const Tensor& input,
                                    const Tensor& offsets, const Tensor& max_indices,
                                    std::int64_t num_weights,
                                    const EmbeddingBagFuncOptions& options,
                                    const Tensor& per_sample_weights) {
  const char* op = "embedding_bag_dense_backward";
  detail::check_floating(grad_output, op, "grad_output");
  const std::int64_t dim_hint = grad_output.dim() == 2 ? grad_output.size(1) : 0;
  check_num_weights(num_weights, dim_hint, op);
  const BagPlan plan = plan_bags(
      {op, input, offsets, num_weights, options, &per_sample_weights, grad_output.dtype()});
  const std::int64_t num_bags = plan.num_bags();
  const std::int64_t dim = check_grad_output(grad_output, num_bags, op);
  const std::vector<std::int64_t> bag_size = bag_sizes_of(plan);
  std::vector<std::int64_t> winners;
  if (options.mode() == EmbeddingBagMode::kMax) {
    if (!max_indices.defined() ||
        (max_indices.dtype() != DType::kInt32 && max_indices.dtype() != DType::kInt64) ||
        max_indices.shape() != Shape{num_bags, dim}) {
      throw ValueError(std::string(op) + ": mode max needs the forward's max_indices, int64 [" +
                       str(num_bags) + ", " + str(dim) + "], got " +
                       (max_indices.defined() ? std::string(dtype_name(max_indices.dtype())) + " " +
                                                    shape_to_string(max_indices.shape())
                                              : std::string("none")));
    }
    winners = offsets_as_int64(max_indices);
    for (std::int64_t b = 0; b < num_bags; ++b) {
      if (bag_size[static_cast<std::size_t>(b)] == 0) continue;
      for (std::int64_t d = 0; d < dim; ++d) {
        const std::int64_t k = winners[static_cast<std::size_t>(b * dim + d)];
        if (k < 0 || k >= num_weights) {
          throw IndexError(std::string(op) + ": max_indices[" + str(b) + "][" + str(d) +
                           "] = " + str(k) + " is out of range for a table of " + str(num_weights) +
                           " rows");
        }
      }
    }
  }
  // Zeroed lazily by the OS: only the pages the rows land on are ever zeroed.
  Tensor grad_weight = detail::zeros_for_scatter({num_weights, dim}, grad_output.dtype(), plan.n());
  visit_floating(grad_output.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (options.mode() == EmbeddingBagMode::kMax) {
      detail::fast::bag_dense_backward_max(grad_output.data<T>(), dim, winners.data(),
                                           bag_size.data(), num_bags, grad_weight.data<T>(),
                                           num_weights);
      return;
    }
    const std::vector<std::int64_t> o2b = offset2bag_of(plan);
    std::vector<std::int64_t> counts;  // one per row: not built when grad_weight is empty
    if (options.scale_grad_by_freq() && dim > 0 && plan.n() > 0) {
      counts = id_counts(*plan.ids, num_weights);
    }
    visit_ids(*plan.ids, [&](const auto* ids) {
      detail::fast::bag_dense_backward_sum(
          grad_output.data<T>(), dim, ids, o2b.data(), plan.n(), plan.padding_idx,
          per_sample_weights.defined() ? per_sample_weights.data<T>() : nullptr,
          counts.empty() ? nullptr : counts.data(),
          options.mode() == EmbeddingBagMode::kMean ? bag_size.data() : nullptr,
          grad_weight.data<T>(), num_weights);
    });
  });
  return grad_weight;
}

SparseGrad embedding_bag_sparse_backward(const Tensor& grad_output, const Tensor& input,
                                         const Tensor& offsets, std::int64_t num_weights,
                                         const EmbeddingBagFuncOptions& options,
                                         const Tensor& per_sample_weights) {
  const char* op = "embedding_bag_sparse_backward";
  detail::check_bag_mode(options.mode(), op);
  detail::check_floating(grad_output, op, "grad_output");
  if (options.mode() == EmbeddingBagMode::kMax) {
    throw ValueError(std::string(op) + ": mode max does not support sparse gradients");
  }
  const std::int64_t dim_hint = grad_output.dim() == 2 ? grad_output.size(1) : 0;
  check_num_weights(num_weights, dim_hint, op);
  const BagPlan plan = plan_bags(
      {op, input, offsets, num_weights, options, &per_sample_weights, grad_output.dtype()});
  check_grad_output(grad_output, plan.num_bags(), op);
  const std::vector<std::int64_t> o2b = offset2bag_of(plan);
  const std::vector<std::int64_t> bag_size = bag_sizes_of(plan);
  // Row i = grad_output[bag(i)] (times T(1 / bag_size) in mode mean, times psw[i]), as the
  // sparse backward of a plain lookup over those rows (which drops padding and applies sgf).
  std::vector<std::int64_t> counts;  // per position
  if (options.scale_grad_by_freq()) counts = detail::position_counts(*plan.ids, num_weights);
  const bool mean = options.mode() == EmbeddingBagMode::kMean;
  return detail::sparse_grad_of(grad_output, *plan.ids, plan.padding_idx, counts, o2b.data(),
                                mean ? Tensor() : per_sample_weights,
                                mean ? bag_size.data() : nullptr, num_weights);
}

std::variant<Tensor, SparseGrad> embedding_bag_backward(const Tensor& grad_output,
                                                        const Tensor& input, const Tensor& offsets,
                                                        const Tensor& max_indices,
                                                        std::int64_t num_weights,
                                                        const EmbeddingBagFuncOptions& options,
                                                        const Tensor& per_sample_weights) {
  if (options.sparse()) {
    return embedding_bag_sparse_backward(grad_output, input, offsets, num_weights, options,
                                         per_sample_weights);
  }
  return embedding_bag_dense_backward(grad_output, input, offsets, max_indices, num_weights,
                                      options, per_sample_weights);
}

Tensor embedding_bag_per_sample_weights_backward(const Tensor& grad_output, const Tensor& weight,
                                                 const Tensor& input, const Tensor& offsets,
                                                 const EmbeddingBagFuncOptions& options) {
  const char* op = "embedding_bag_per_sample_weights_backward";
  detail::check_bag_mode(options.mode(), op);
  check_weight(weight, op);
  if (options.mode() != EmbeddingBagMode::kSum) {
    throw NotImplementedError(std::string(op) +
                              ": per_sample_weights is only supported for mode sum, got mode " +
                              mode_name(options.mode()));
  }
  const BagPlan plan =
      plan_bags({op, input, offsets, weight.size(0), options, nullptr, weight.dtype()});
  check_grad_output(grad_output, plan.num_bags(), op, weight.size(1));
  if (grad_output.dtype() != weight.dtype()) {
    throw ValueError(std::string(op) + ": grad_output has dtype " +
                     std::string(dtype_name(grad_output.dtype())) + ", the weight " +
                     std::string(dtype_name(weight.dtype())));
  }
  Tensor out = detail::empty_reused(input.shape(), weight.dtype());
  visit_floating(weight.dtype(), [&](auto tag) {
    using T = decltype(tag);
    visit_ids(*plan.ids, [&](const auto* ids) {
      detail::fast::bag_per_sample_weights_backward(
          grad_output.data<T>(), weight.data<T>(), weight.size(1), ids, plan.bounds.data(),
          plan.num_bags(), plan.padding_idx, psw_grad_dot<T>(), out.data<T>());
    });
  });
  return out;
}

}  // namespace emb

namespace emb::detail {

BagLayout plan_bag_layout(const char* op, const Tensor& input, const Tensor& offsets,
                          std::int64_t num_rows, const EmbeddingBagFuncOptions& options,
                          const Tensor& per_sample_weights, DType psw_dtype) {
  const BagPlan p =
      plan_bags({op, input, offsets, num_rows, options, &per_sample_weights, psw_dtype});
  return {input.reshape({p.n()}),
          std::vector<std::int64_t>(p.bounds.data(), p.bounds.data() + p.bounds.size()),
          p.padding_idx};
}

}  // namespace emb::detail
