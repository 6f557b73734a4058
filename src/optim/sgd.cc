#include "emb/optim/sgd.h"

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "kernels/optim_rows.h"
#include "optim/ops.h"
#include "sparse_grad_access.h"

namespace emb::optim {

namespace ops = emb::detail::optim;

// A row-sparse momentum buffer lives in three state tensors:
//   "momentum_rows"      int64 [capacity]       the row id held by each slot
//   "momentum_values"    [capacity, dim]        the buffer row of each slot
//   "momentum_rows_used" int64 0-d              how many slots are in use (the rest are zero)
// and this index, rebuilt from "momentum_rows" after load().
struct SGD::RowIndex {
  std::unordered_map<std::int64_t, std::int64_t> slot;
};

namespace {

void check_options(const SGDOptions& o) {
  ops::check_hyper(o.lr() >= 0.0, "learning rate", o.lr());
  ops::check_hyper(o.momentum() >= 0.0, "momentum value", o.momentum());
  ops::check_hyper(o.weight_decay() >= 0.0, "weight_decay value", o.weight_decay());
  if (o.nesterov() && (o.momentum() <= 0.0 || o.dampening() != 0.0)) {
    throw ValueError("Nesterov momentum requires a momentum and zero dampening");
  }
}

// Grows the sparse buffer's capacity to at least `need` slots (new slots zero), never beyond
// the table's `num_rows` (a row has at most one slot).
void reserve_slots(ParamState& s, std::int64_t need, std::int64_t num_rows, std::int64_t dim,
                   DType dtype) {
  Tensor& rows = s.tensors.at("momentum_rows");
  need = std::min(need, num_rows);
  if (rows.numel() >= need) return;
  const std::int64_t cap = std::min(std::max<std::int64_t>(need, 2 * rows.numel()), num_rows);
  Tensor new_rows = Tensor::zeros({cap}, DType::kInt64);
  Tensor new_values = Tensor::zeros({cap, dim}, dtype);
  const Tensor& values = s.tensors.at("momentum_values");
  std::copy_n(static_cast<const std::byte*>(rows.raw_data()), rows.nbytes(),
              static_cast<std::byte*>(new_rows.raw_data()));
  std::copy_n(static_cast<const std::byte*>(values.raw_data()), values.nbytes(),
              static_cast<std::byte*>(new_values.raw_data()));
  s.tensors["momentum_rows"] = std::move(new_rows);
  s.tensors["momentum_values"] = std::move(new_values);
}

}  // namespace

SGD::SGD(std::vector<Parameter*> params, const SGDOptions& options)
    : Optimizer(std::move(params), "SGD"), options_(options) {
  check_options(options_);
  row_index_.resize(params_.size());
}

void SGD::set_lr(double lr) {
  ops::check_hyper(lr >= 0.0, "learning rate", lr);
  options_.lr(lr);
}

void SGD::check_grad(std::size_t i, const Parameter& param) const {
  if (param.grad_is_sparse() && options_.weight_decay() != 0.0) throw_sparse_weight_decay(i);
}

void SGD::throw_sparse_weight_decay(std::size_t i) {
  throw NotImplementedError(ops::param_prefix("SGD", i) +
                            "weight_decay is not supported with sparse gradients (PyTorch: "
                            "add(sparse, dense) is not supported)");
}

void SGD::check_rows_update(std::size_t i) const {
  if (options_.weight_decay() != 0.0) throw_sparse_weight_decay(i);
  if (options_.momentum() != 0.0) {
    throw NotImplementedError(ops::param_prefix("SGD", i) +
                              "a fused backward + step supports SGD without momentum; call "
                              "backward() and step()");
  }
}

void SGD::update_rows(std::size_t /*i*/, Parameter& param, ParamState& /*state*/,
                      const detail::SparseRows& given) {
  detail::SparseRows rows = given;
  rows.maximize = options_.maximize();
  detail::fast::sgd_rows(rows, {options_.lr()}, param.data().raw_data());
}

void SGD::check_loaded_state(std::size_t i, const ParamState& state) const {
  const Tensor& data = params_[i]->data();
  auto fail = [&](const std::string& why) {
    throw FormatError("SGD::load: parameter " + std::to_string(i) + ": " + why);
  };
  for (const auto& [key, t] : state.tensors) {
    if (key == "momentum_buffer") {
      if (t.dtype() != data.dtype() || t.shape() != data.shape())
        fail("momentum_buffer does not match the parameter");
    } else if (key != "momentum_rows" && key != "momentum_values" && key != "momentum_rows_used") {
      fail("unknown state \"" + ops::printable(key) + "\"");
    }
  }
  const bool has_rows = state.tensors.count("momentum_rows") != 0;
  if (has_rows != (state.tensors.count("momentum_values") != 0) ||
      has_rows != (state.tensors.count("momentum_rows_used") != 0)) {
    fail("incomplete row-sparse momentum buffer");
  }
  if (!has_rows) return;
  if (state.tensors.count("momentum_buffer") != 0) {
    fail("both a dense and a row-sparse momentum buffer");
  }
  const Tensor& rows = state.tensors.at("momentum_rows");
  const Tensor& values = state.tensors.at("momentum_values");
  const Tensor& used = state.tensors.at("momentum_rows_used");
  if (data.dim() != 2 || rows.dtype() != DType::kInt64 || rows.dim() != 1 ||
      values.dtype() != data.dtype() || values.dim() != 2 || values.size(0) != rows.numel() ||
      values.size(1) != data.size(1) || used.dtype() != DType::kInt64 || used.dim() != 0) {
    fail("malformed row-sparse momentum buffer");
  }
  const std::int64_t n = used.data<std::int64_t>()[0];
  if (n < 0 || n > rows.numel()) fail("bad momentum_rows_used " + std::to_string(n));
  // In range for the table as it is now (it may have been replaced since the rows were held).
  const std::int64_t* r = rows.data<std::int64_t>();
  for (std::int64_t k = 0; k < n; ++k) {
    if (r[k] < 0 || r[k] >= data.size(0)) {
      fail("momentum_rows[" + std::to_string(k) + "] = " + std::to_string(r[k]) +
           " is out of range for a table of " + std::to_string(data.size(0)) + " rows");
    }
  }
  // The rows of the optimizer's own state were distinct when they were loaded and update()
  // keeps them so; a state about to be loaded is checked here. Each row holds at most one slot:
  // a repeated row would let the buffer outgrow the table.
  if (&state == &state_[i]) return;
  std::vector<std::int64_t> sorted(r, r + n);
  std::sort(sorted.begin(), sorted.end());
  const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
  if (dup != sorted.end()) fail("momentum row " + std::to_string(*dup) + " appears twice");
}

void SGD::on_state_loaded() {
  for (std::size_t i = 0; i < params_.size(); ++i) {
    row_index_[i].reset();
    const auto it = state_[i].tensors.find("momentum_rows");
    if (it == state_[i].tensors.end()) continue;
    auto index = std::make_shared<RowIndex>();
    const std::int64_t n = state_[i].tensors.at("momentum_rows_used").data<std::int64_t>()[0];
    const std::int64_t* r = it->second.data<std::int64_t>();
    for (std::int64_t k = 0; k < n; ++k) index->slot.emplace(r[k], k);
    row_index_[i] = std::move(index);
  }
}

void SGD::update(std::size_t i, Parameter& param, ParamState& state) {
  const Tensor& theta = param.data();
  const double momentum = options_.momentum();
  const bool sparse = param.grad_is_sparse();

  // Without momentum a sparse gradient is applied entry by entry, in order, like PyTorch's
  // dense.add_(sparse, alpha=-lr).
  if (sparse && momentum == 0.0) {
    const ops::GroupedGrad g = ops::group_rows(param.sparse_grad());
    update_rows(i, param, state, g.rows);
    return;
  }

  // Row-sparse momentum: the buffer holds the rows ever touched.
  const bool has_dense_buf = state.tensors.count("momentum_buffer") != 0;
  const bool has_sparse_buf = state.tensors.count("momentum_rows") != 0;
  if (sparse && !has_dense_buf) {
    const ops::CoalescedRows g = ops::coalesce_rows(param.sparse_grad(), options_.maximize());
    const bool first = !has_sparse_buf;
    const std::int64_t dim = g.dim;
    if (first) {
      state.tensors["momentum_rows"] = Tensor::zeros({0}, DType::kInt64);
      state.tensors["momentum_values"] = Tensor::zeros({0, dim}, theta.dtype());
      state.tensors["momentum_rows_used"] = Tensor::scalar<std::int64_t>(0);
      row_index_[i] = std::make_shared<RowIndex>();
    }
    RowIndex& index = *row_index_[i];
    std::int64_t& used = state.tensors.at("momentum_rows_used").data<std::int64_t>()[0];
    reserve_slots(state, used + g.n, theta.size(0), dim, theta.dtype());
    const std::int64_t old_used = used;
    // Each gradient row gets a slot (a new one at the end for a row the buffer lacks).
    std::vector<std::int64_t> grad_row_of_slot(static_cast<std::size_t>(old_used + g.n), -1);
    std::int64_t* rows = state.tensors.at("momentum_rows").data<std::int64_t>();
    const std::int64_t* gid = g.ids.data<std::int64_t>();
    for (std::int64_t j = 0; j < g.n; ++j) {
      auto [it, inserted] = index.slot.emplace(gid[j], used);
      if (inserted) {
        rows[used] = gid[j];
        ++used;
      }
      grad_row_of_slot[static_cast<std::size_t>(it->second)] = j;
    }
    // On every held row: buf = μ buf (+ (1 - dampening) d where the gradient has the row; the
    // first step: buf = d); θ -= lr * (nesterov ? d + μ buf : buf).
    const detail::SgdMomentumRows m{theta.dtype(), dim,  g.values.raw_data(),    used,
                                    old_used,      rows, grad_row_of_slot.data()};
    const detail::SgdDenseHyper h{
        options_.lr(), momentum, options_.dampening(), 0.0, options_.nesterov(), false, first};
    detail::fast::sgd_momentum_rows(m, h, theta.raw_data(),
                                    state.tensors.at("momentum_values").raw_data());
    return;
  }

  // Dense: a sparse gradient meeting a dense buffer is made dense (the step is O(table) anyway).
  Tensor grad = sparse ? param.sparse_grad().to_dense() : param.grad();
  if (momentum != 0.0 && has_sparse_buf) {
    // A dense gradient meeting a row-sparse buffer: the buffer becomes dense.
    Tensor dense_buf = Tensor::zeros(theta.shape(), theta.dtype());
    const std::int64_t used = state.tensors.at("momentum_rows_used").data<std::int64_t>()[0];
    const std::int64_t dim = theta.size(1);
    const std::size_t row_bytes = static_cast<std::size_t>(dim) * element_size(theta.dtype());
    const std::int64_t* rows = state.tensors.at("momentum_rows").data<std::int64_t>();
    const auto* src = static_cast<const std::byte*>(state.tensors.at("momentum_values").raw_data());
    auto* dst = static_cast<std::byte*>(dense_buf.raw_data());
    for (std::int64_t s = 0; s < used; ++s) {
      std::copy_n(src + s * row_bytes, row_bytes, dst + rows[s] * row_bytes);
    }
    state.tensors.erase("momentum_rows");
    state.tensors.erase("momentum_values");
    state.tensors.erase("momentum_rows_used");
    row_index_[i].reset();
    state.tensors["momentum_buffer"] = std::move(dense_buf);
  }
  const bool first = momentum != 0.0 && state.tensors.count("momentum_buffer") == 0;
  if (first) state.tensors["momentum_buffer"] = Tensor::empty(theta.shape(), theta.dtype());
  const detail::SgdDenseHyper h{options_.lr(),
                                momentum,
                                options_.dampening(),
                                options_.weight_decay(),
                                options_.nesterov(),
                                options_.maximize(),
                                first};
  void* buf = momentum != 0.0 ? state.tensors.at("momentum_buffer").raw_data() : nullptr;
  detail::fast::sgd_dense(theta.dtype(), h, theta.numel(), grad.raw_data(), theta.raw_data(), buf);
}

}  // namespace emb::optim
