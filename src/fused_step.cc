// The fused backward + optimizer step of Embedding and EmbeddingBag: the sparse weight gradient
// is never built. Positions are grouped by table row (row_groups.h) and each touched row is
// coalesced from grad_output on the fly and updated at once by the optimizer's row kernel
// (kernels/optim_rows.h), with the same roundings as backward() (sparse) followed by step().
#include <string>
#include <vector>

#include "bag_layout.h"
#include "emb/embedding.h"
#include "emb/embedding_bag.h"
#include "emb/optim/optimizer.h"
#include "index_check.h"
#include "kernels/optim_rows.h"
#include "optim/fused_access.h"
#include "row_groups.h"

namespace emb {

namespace {

// What the row kernels read, owned here.
struct FusedGrad {
  Tensor grad;                      // [sources, dim]: grad_output, or a scaled or private copy
  std::int64_t sources = 0;
  detail::RowGroups groups;         // positions grouped by row
  std::vector<std::int64_t> src;    // [entries] the grad row of each entry
  Tensor scale;                     // [entries] per-sample weights in entry order, or undefined
  bool freq = false;

  detail::SparseRows rows(DType dtype, std::int64_t dim) const {
    return {dtype,
            dim,
            grad.defined() ? grad.raw_data() : nullptr,
            sources,
            static_cast<std::int64_t>(groups.rows.size()),
            groups.rows.data(),
            groups.starts.data(),
            src.data(),
            scale.defined() ? scale.raw_data() : nullptr,
            freq,
            false};
  }
};

// Whether t shares memory with what the step writes: the weight or parameter i's state.
bool aliases_step(const Tensor& t, const Tensor& weight, const optim::Optimizer& opt,
                  std::size_t i) {
  if (t.shares_storage_with(weight)) return true;
  for (const auto& entry : opt.state(i).tensors) {
    if (t.shares_storage_with(entry.second)) return true;
  }
  return false;
}

// The checks both modules make before anything else (those of their backward()).
void check_step_args(const char* op, const Tensor& weight, const Tensor& grad_output,
                     std::int64_t dim, bool sparse) {
  detail::check_weight_2d(weight, op);
  if (grad_output.defined() && grad_output.dtype() != weight.dtype()) {
    throw ValueError(std::string(op) + ": grad_output has dtype " +
                     std::string(dtype_name(grad_output.dtype())) + ", the weight " +
                     std::string(dtype_name(weight.dtype())));
  }
  if (grad_output.defined() && grad_output.dim() > 0 && grad_output.size(-1) != dim) {
    throw ValueError(std::string(op) + ": grad_output has shape " +
                     shape_to_string(grad_output.shape()) + ", its last dimension must be " +
                     std::to_string(dim));
  }
  if (!sparse) {
    throw ValueError(std::string(op) +
                     ": the module computes dense gradients; a fused step applies the sparse "
                     "gradient (build the module with sparse(true))");
  }
}

// Applies g to parameter i of opt (checked) and advances its step count.
void apply(optim::Optimizer& opt, std::size_t i, const Tensor& weight, const FusedGrad& g) {
  detail::FusedStepAccess::apply(opt, i, g.rows(weight.dtype(), weight.size(1)));
}

}  // namespace

Tensor EmbeddingBag::fused_backward_step(const Tensor& input, const Tensor& offsets,
                                         const Tensor& grad_output, optim::Optimizer& optimizer,
                                         const Tensor& per_sample_weights) {
  const char* op = "EmbeddingBag::fused_backward_step";
  const Tensor& w = weight_.data();
  check_step_args(op, w, grad_output, options_.embedding_dim(), options_.sparse());
  EmbeddingBagFuncOptions fo = func_options();
  fo.max_norm(std::nullopt);  // the forward renormalized; the gradient ignores it
  // The per-sample-weight gradient reads the weight as the forward saw it: before the update.
  Tensor psw_grad;
  if (per_sample_weights.defined()) {
    psw_grad = embedding_bag_per_sample_weights_backward(grad_output, w, input, offsets, fo);
  }
  if (!weight_.requires_grad()) {  // no weight gradient, no step; bad input is still an error
    detail::check_embedding_bag_backward_args(op, grad_output, input, offsets,
                                              options_.num_embeddings(), fo, per_sample_weights);
    return psw_grad;
  }
  detail::check_floating(grad_output, op, "grad_output");
  const detail::BagLayout plan =
      detail::plan_bag_layout(op, input, offsets, options_.num_embeddings(), fo,
                              per_sample_weights, grad_output.dtype());
  const auto num_bags = static_cast<std::int64_t>(plan.bounds.size()) - 1;
  const std::int64_t dim = options_.embedding_dim();
  if (grad_output.dim() != 2 || grad_output.size(0) != num_bags) {
    throw ValueError(std::string(op) + ": grad_output has shape " +
                     shape_to_string(grad_output.shape()) + ", expected [" +
                     std::to_string(num_bags) + ", " + std::to_string(dim) +
                     "] (one row per bag)");
  }
  const std::size_t i = detail::FusedStepAccess::check(optimizer, weight_, op);

  // Everything is valid: build the grouped gradient (nothing below throws but for memory).
  FusedGrad g;
  g.freq = options_.scale_grad_by_freq();
  g.sources = num_bags;
  const std::int64_t n = plan.ids.numel();
  g.groups = detail::visit_ids(plan.ids, [&](const auto* ids) {
    return detail::group_by_row(ids, n, options_.num_embeddings(), plan.padding_idx);
  });
  std::vector<std::int64_t> bag_of(static_cast<std::size_t>(n));
  std::vector<std::int64_t> bag_size(static_cast<std::size_t>(num_bags), 0);
  for (std::int64_t b = 0; b < num_bags; ++b) {
    for (std::int64_t k = plan.bounds[b]; k < plan.bounds[b + 1]; ++k) {
      bag_of[static_cast<std::size_t>(k)] = b;
    }
  }
  g.src.resize(g.groups.positions.size());
  for (std::size_t e = 0; e < g.src.size(); ++e) {
    g.src[e] = bag_of[static_cast<std::size_t>(g.groups.positions[e])];
    ++bag_size[static_cast<std::size_t>(g.src[e])];  // positions kept: the non-padding ones
  }
  const bool mean = options_.mode() == EmbeddingBagMode::kMean;
  detail::visit_floating(w.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      if (per_sample_weights.defined()) {  // scale[e] = psw[position of e]
        const T* psw = per_sample_weights.data<T>();
        g.scale = Tensor::empty({static_cast<std::int64_t>(g.src.size())}, w.dtype());
        T* sc = g.scale.data<T>();
        for (std::size_t e = 0; e < g.src.size(); ++e) sc[e] = psw[g.groups.positions[e]];
      }
      if (mean) {  // grad[b] * T(1 / T(bag_size[b])), as the sparse backward rounds it
        g.grad = Tensor::empty({num_bags, dim}, w.dtype());
        const T* go = grad_output.data<T>();
        T* out = g.grad.data<T>();
        for (std::int64_t b = 0; b < num_bags; ++b) {
          const std::int64_t size = bag_size[static_cast<std::size_t>(b)];
          if (size == 0) continue;  // no entry reads it
          const T s = T(1) / static_cast<T>(size);
          for (std::int64_t d = 0; d < dim; ++d) out[b * dim + d] = go[b * dim + d] * s;
        }
      }
    }
  });
  if (!mean) {
    g.grad = aliases_step(grad_output, w, optimizer, i) ? grad_output.clone() : grad_output;
  }
  apply(optimizer, i, w, g);
  return psw_grad;
}

void Embedding::fused_backward_step(const Tensor& input, const Tensor& grad_output,
                                    optim::Optimizer& optimizer) {
  const char* op = "Embedding::fused_backward_step";
  const Tensor& w = weight_.data();
  check_step_args(op, w, grad_output, options_.embedding_dim(), options_.sparse());
  const std::int64_t pad = detail::check_embedding_backward_args(
      op, grad_output, input, options_.num_embeddings(), options_.padding_idx());
  if (!weight_.requires_grad()) return;
  const std::size_t i = detail::FusedStepAccess::check(optimizer, weight_, op);

  FusedGrad g;
  g.freq = options_.scale_grad_by_freq();
  const std::int64_t n = input.numel();
  g.sources = n;
  g.groups = detail::visit_ids(input, [&](const auto* ids) {
    return detail::group_by_row(ids, n, options_.num_embeddings(), pad);
  });
  g.src = g.groups.positions;  // grad_output [*, dim]: row k belongs to position k
  const Tensor flat = grad_output.reshape({n, options_.embedding_dim()});
  g.grad = aliases_step(flat, w, optimizer, i) ? flat.clone() : flat;
  apply(optimizer, i, w, g);
}

}  // namespace emb
