// The functional embedding ops: validate everything once, then call the kernels (fast ones where
// they exist, kernels/fast.h; the reference loops for the rest).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "emb/embedding.h"
#include "index_check.h"
#include "kernels/fast.h"
#include "kernels/fast_sparse.h"
#include "kernels/ref/embedding_ref.h"
#include "module_common.h"
#include "row_groups.h"
#include "runtime_internal.h"
#include "sparse_grad_access.h"

namespace emb {

using detail::visit_floating;
using detail::visit_ids;
namespace fast = detail::fast;

namespace {

// Renorm on validated input (weight 2-D floating, ids valid).
void renorm_validated(const Tensor& weight, const Tensor& ids, double max_norm, double norm_type) {
  detail::resolve_runtime_settings();  // may throw for a bad environment: before any write
  detail::visit_ids(ids, [&](const auto* p) {
    detail::visit_floating(weight.dtype(), [&](auto tag) {
      using T = decltype(tag);
      detail::fast::renorm_ids(weight.data<T>(), weight.size(1), p, ids.numel(), weight.size(0),
                               max_norm, norm_type);
    });
  });
}

}  // namespace

// counts[i] = number of positions with the id of position i (all positions, padding included):
// [4, 1, 4] -> [2, 1, 2]. Memory O(n), whatever the table's size.
std::vector<std::int64_t> detail::position_counts(const Tensor& ids, std::int64_t num_weights) {
  std::vector<std::int64_t> counts(static_cast<std::size_t>(ids.numel()));
  const fast::RowGroups groups = visit_ids(
      ids, [&](const auto* p) { return fast::group_rows_by_id(p, ids.numel(), -1, num_weights); });
  for (std::int64_t g = 0; g < groups.groups(); ++g) {
    const std::int64_t size = groups.starts[g + 1] - groups.starts[g];
    for (std::int64_t j = groups.starts[g]; j < groups.starts[g + 1]; ++j) {
      counts[static_cast<std::size_t>(groups.order[j])] = size;
    }
  }
  return counts;
}

namespace {

// counts[k] = number of positions with id k (all positions, padding included); for the dense
// backward, whose output has num_weights rows anyway.
std::vector<std::int64_t> id_counts(const Tensor& ids, std::int64_t num_weights) {
  std::vector<std::int64_t> counts(static_cast<std::size_t>(num_weights), 0);
  detail::visit_ids(ids, [&](const auto* p) {
    for (std::int64_t i = 0; i < ids.numel(); ++i) ++counts[static_cast<std::size_t>(p[i])];
  });
  return counts;
}

}  // namespace

std::int64_t detail::check_embedding_backward_args(const char* op, const Tensor& grad_output,
                                                   const Tensor& indices, std::int64_t num_weights,
                                                   std::optional<std::int64_t> padding_idx) {
  detail::check_floating(grad_output, op, "grad_output");
  detail::check_index_dtype(indices, op, "indices");
  if (num_weights < 0) {
    throw ValueError(std::string(op) + ": num_weights = " + std::to_string(num_weights) +
                     " is negative");
  }
  Shape expected = indices.shape();
  if (grad_output.dim() != indices.dim() + 1 ||
      !std::equal(expected.begin(), expected.end(), grad_output.shape().begin())) {
    expected.push_back(grad_output.dim() > 0 ? grad_output.size(-1) : 0);
    throw ValueError(std::string(op) + ": grad_output has shape " +
                     shape_to_string(grad_output.shape()) + ", expected " +
                     shape_to_string(expected) + " (indices shape + [embedding_dim])");
  }
  checked_numel({num_weights, grad_output.size(-1)}, op);
  const std::int64_t pad = detail::normalize_padding_idx(padding_idx, num_weights, op);
  detail::check_ids_in_range(indices, num_weights, op, "indices");
  return pad;
}

namespace {

// Every check of a lookup's arguments but its output's (and, with check_ids false, but the ids'
// range, which the gather then checks as it reads them).
void check_lookup(const char* op, const Tensor& input, const Tensor& weight,
                  const EmbeddingFuncOptions& options, bool check_ids = true) {
  detail::check_weight_2d(weight, op);
  detail::check_index_dtype(input, op, "indices");
  const std::int64_t num = weight.size(0);
  detail::normalize_padding_idx(options.padding_idx(), num, op);
  if (check_ids) detail::check_ids_in_range(input, num, op, "indices");
  if (options.max_norm()) {
    const std::string what = std::string(op) + " (max_norm)";
    detail::check_floating(weight, what.c_str(), "weight");
    weight.check_writable(what.c_str());
  }
}

// out[i] = weight[ids[i]], on validated arguments.
void gather(const Tensor& ids, const Tensor& weight, const Tensor& out) {
  const std::size_t row_bytes =
      static_cast<std::size_t>(weight.size(1)) * element_size(weight.dtype());
  detail::visit_ids(ids, [&](const auto* p) {
    detail::fast::gather_rows(static_cast<const std::byte*>(weight.raw_data()), row_bytes, p,
                              ids.numel(), static_cast<std::byte*>(out.raw_data()));
  });
}

// gather() into a new out, the ids not yet checked: the gather checks them as it reads them
// (one pass over the ids, not two); if one is outside the table, the error names it, and out,
// which nobody else holds, is dropped.
void gather_checking_ids(const char* op, const Tensor& ids, const Tensor& weight,
                         const Tensor& out) {
  const std::size_t row_bytes =
      static_cast<std::size_t>(weight.size(1)) * element_size(weight.dtype());
  const bool ok = detail::visit_ids(ids, [&](const auto* p) {
    return detail::fast::gather_rows_checked(
        static_cast<const std::byte*>(weight.raw_data()), row_bytes, p, ids.numel(),
        static_cast<std::byte*>(out.raw_data()), weight.size(0));
  });
  if (!ok) detail::throw_first_id_out_of_range(ids, weight.size(0), op, "indices");
}

// The lookup of validated arguments into out [*input.shape, dim] (allocated or checked).
void lookup_into(const Tensor& input, const Tensor& weight, const EmbeddingFuncOptions& options,
                 const Tensor& out) {
  if (!options.max_norm()) return gather(input, weight, out);
  // Ids that live inside the weight would change under the renorm: read them first.
  const Tensor ids = input.shares_storage_with(weight) ? input.clone() : input;
  renorm_validated(weight, ids, *options.max_norm(), options.norm_type());
  gather(ids, weight, out);
}

}  // namespace

// Everything, out included, is valid before an output is allocated or the renorm writes.

Tensor embedding(const Tensor& input, const Tensor& weight, const EmbeddingFuncOptions& options) {
  // Without a renorm, nothing is written before the ids are read: the gather checks them.
  const bool gather_checks_ids = !options.max_norm();
  check_lookup("embedding", input, weight, options, !gather_checks_ids);
  Shape out_shape;
  out_shape.reserve(input.shape().size() + 1);
  out_shape = input.shape();
  out_shape.push_back(weight.size(1));
  // May throw: before any write.
  Tensor out = detail::empty_reused(std::move(out_shape), weight.dtype());
  if (gather_checks_ids) {
    gather_checking_ids("embedding", input, weight, out);
  } else {
    lookup_into(input, weight, options, out);
  }
  return out;
}

void embedding_out(const Tensor& input, const Tensor& weight, const Tensor& out,
                   const EmbeddingFuncOptions& options) {
  const char* op = "embedding_out";
  check_lookup(op, input, weight, options);
  detail::check_out(out, weight.dtype(), input.shape(), weight.size(1), op, {&weight, &input},
                    {"weight", "indices"});
  lookup_into(input, weight, options, out);
}

void embedding_renorm_(const Tensor& weight, const Tensor& indices, double max_norm,
                       double norm_type) {
  detail::check_weight_2d(weight, "embedding_renorm_");
  detail::check_floating(weight, "embedding_renorm_", "weight");
  detail::check_index_dtype(indices, "embedding_renorm_", "indices");
  detail::check_ids_in_range(indices, weight.size(0), "embedding_renorm_", "indices");
  weight.check_writable("embedding_renorm_");
  renorm_validated(weight, indices, max_norm, norm_type);
}

Tensor embedding_dense_backward(const Tensor& grad_output, const Tensor& indices,
                                std::int64_t num_weights, std::optional<std::int64_t> padding_idx,
                                bool scale_grad_by_freq) {
  const char* op = "embedding_dense_backward";
  const std::int64_t pad =
      detail::check_embedding_backward_args(op, grad_output, indices, num_weights, padding_idx);
  const std::int64_t dim = grad_output.size(-1);
  // Zeroed lazily by the OS: only the pages the rows land on are ever zeroed.
  Tensor grad_weight =
      detail::zeros_for_scatter({num_weights, dim}, grad_output.dtype(), indices.numel());
  std::vector<std::int64_t> counts;  // one per row: never larger than grad_weight, or not built
  if (scale_grad_by_freq && dim > 0 && indices.numel() > 0) {
    counts = id_counts(indices, num_weights);
  }
  detail::visit_floating(grad_output.dtype(), [&](auto tag) {
    using T = decltype(tag);
    detail::visit_ids(indices, [&](const auto* ids) {
      detail::fast::embedding_dense_backward(grad_output.data<T>(), ids, indices.numel(), dim, pad,
                                             counts.empty() ? nullptr : counts.data(),
                                             grad_weight.data<T>(), num_weights);
    });
  });
  return grad_weight;
}

SparseGrad embedding_sparse_backward(const Tensor& grad_output, const Tensor& indices,
                                     std::int64_t num_weights,
                                     std::optional<std::int64_t> padding_idx,
                                     bool scale_grad_by_freq) {
  const char* op = "embedding_sparse_backward";
  const std::int64_t pad =
      detail::check_embedding_backward_args(op, grad_output, indices, num_weights, padding_idx);
  std::vector<std::int64_t> counts;  // per position
  if (scale_grad_by_freq) counts = detail::position_counts(indices, num_weights);
  return detail::sparse_grad_of(grad_output, indices, pad, counts, nullptr, Tensor(), nullptr,
                                num_weights);
}

SparseGrad embedding_sparse_backward_coalesced(const Tensor& grad_output, const Tensor& indices,
                                               std::int64_t num_weights,
                                               std::optional<std::int64_t> padding_idx,
                                               bool scale_grad_by_freq) {
  const char* op = "embedding_sparse_backward_coalesced";
  const std::int64_t pad =
      detail::check_embedding_backward_args(op, grad_output, indices, num_weights, padding_idx);
  std::vector<std::int64_t> counts;  // per position
  if (scale_grad_by_freq) counts = detail::position_counts(indices, num_weights);
  return detail::sparse_grad_of(grad_output, indices, pad, counts, nullptr, Tensor(), nullptr,
                                num_weights, true);
}

SparseGrad detail::sparse_grad_of(const Tensor& grad, const Tensor& ids, std::int64_t padding_idx,
                                  const std::vector<std::int64_t>& counts,
                                  const std::int64_t* src_row, const Tensor& psw,
                                  const std::int64_t* bag_size, std::int64_t num_weights,
                                  bool coalesced) {
  const std::int64_t n = ids.numel();
  const std::int64_t dim = grad.size(-1);
  // Coalesced: the kept positions grouped by id. Else the positions whose id is not the padding
  // row, one group each (all of them: no list).
  fast::RowGroups groups;
  std::vector<std::int64_t> group_ids;  // coalesced: each group's id (increasing)
  std::int64_t rows_out = 0;
  visit_ids(ids, [&](const auto* p) {
    if (coalesced) {  // fast::group_rows_by_id's grouping, with the groups' ids
      RowGroups g = group_by_row(p, n, num_weights, padding_idx);
      groups.order = std::move(g.positions);
      groups.starts = std::move(g.starts);
      group_ids = std::move(g.rows);
      rows_out = groups.groups();
      return;
    }
    for (std::int64_t i = 0; i < n; ++i) rows_out += p[i] != padding_idx;
    if (rows_out != n) {
      groups.order.reserve(static_cast<std::size_t>(rows_out));
      for (std::int64_t i = 0; i < n; ++i) {
        if (p[i] != padding_idx) groups.order.push_back(i);
      }
    }
  });
  // Like PyTorch: no rows left (all padding, empty input) or zero-width rows -> an empty gradient.
  if (rows_out == 0 || dim == 0) return SparseGrad(num_weights, dim, grad.dtype());
  Tensor ids_out = empty_reused({rows_out}, DType::kInt64);
  Tensor values = empty_reused({rows_out, dim}, grad.dtype());
  // Coalesced, the ids are the groups' (read in order here, not at random in the kernel).
  if (coalesced) std::copy(group_ids.begin(), group_ids.end(), ids_out.data<std::int64_t>());
  visit_floating(grad.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const fast::SparseRowsSource<T> source{
        grad.data<T>(), dim,
        src_row,        psw.defined() ? psw.data<T>() : nullptr,
        bag_size,       counts.empty() ? nullptr : counts.data()};
    visit_ids(ids, [&](const auto* p) {
      fast::sparse_grad_rows(source, p, groups.order.empty() ? nullptr : groups.order.data(),
                             coalesced ? groups.starts.data() : nullptr, rows_out,
                             coalesced ? nullptr : ids_out.data<std::int64_t>(), values.data<T>());
    });
  });
  return SparseGradAccess::adopt(std::move(ids_out), std::move(values), num_weights, coalesced);
}

}  // namespace emb
