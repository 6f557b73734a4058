// The element operations of ATen's CPU kernels that the optimizers are built from, with the same
// roundings, so that float64 (and float32) results match PyTorch bit for bit. Measured on the
// oracle: add with alpha and addcmul fuse their last multiply-add (one rounding); addcdiv and the
// rest round every operation. The library is compiled without floating-point contraction, so
// every other expression here rounds each operation too.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "emb/error.h"
#include "emb/parameter.h"
#include "emb/tensor.h"
#include "kernels/optim_rows.h"
#include "row_groups.h"

namespace emb::optim::detail_adam {
struct Config;
}  // namespace emb::optim::detail_adam

namespace emb::detail::optim {

/// a.add_(b, alpha): a + alpha * b with one rounding.
template <typename T>
inline T add_alpha(T a, T b, T alpha) {
  return std::fma(b, alpha, a);
}

/// self.addcmul_(t1, t2, value): self + (value * t1) * t2, the last multiply-add fused.
template <typename T>
inline T addcmul(T self, T t1, T t2, T value) {
  return std::fma(value * t1, t2, self);
}

/// self.addcdiv_(t1, t2, value): self + (value * t1) / t2.
template <typename T>
inline T addcdiv(T self, T t1, T t2, T value) {
  return self + (value * t1) / t2;
}

/// torch.maximum: NaN if either is NaN.
template <typename T>
inline T maximum(T a, T b) {
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<T>::quiet_NaN();
  return a < b ? b : a;
}

/// Asks the CPU to start loading the cache lines of `bytes` bytes at p (a row a few iterations
/// ahead): sparse steps on big tables are bound by memory latency, not arithmetic.
inline void prefetch_row(const void* p, std::size_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (std::size_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off, 1, 1);
}

/// How many rows ahead the sparse loops prefetch.
inline constexpr std::int64_t kPrefetchRows = 12;

/// Calls fn(T{}) with T = float or double (the parameter dtypes the optimizers accept).
template <typename Fn>
decltype(auto) visit_param_dtype(DType dtype, Fn&& fn) {
  if (dtype == DType::kFloat64) return fn(double{});
  return fn(float{});
}

/// A row-sparse gradient made ready for an update: rows sorted and unique (coalesced), values
/// negated when maximize.
struct CoalescedRows {
  Tensor ids;     // [n] int64
  Tensor values;  // [n, dim]
  std::int64_t n = 0;
  std::int64_t dim = 0;
};
CoalescedRows coalesce_rows(const SparseGrad& grad, bool maximize);

/// A SparseGrad as the row kernels take it (kernels/optim_rows.h): its value rows grouped by id,
/// in order of appearance within an id; `rows` points into `groups` (move it, never copy it).
/// rows.maximize is false: the optimizer sets it.
struct GroupedGrad {
  RowGroups groups;
  SparseRows rows;
};
GroupedGrad group_rows(const SparseGrad& grad);

/// Adam's per-step constants at step `step` (>= 1), computed in double as the Adam family
/// computes them (the row and dense kernels round them to the parameter's dtype).
AdamHyper adam_hyper(const emb::optim::detail_adam::Config& c, std::int64_t step);

/// "Adam: parameter 1: " — the prefix of messages about one parameter.
std::string param_prefix(const char* what, std::size_t i);

/// Throws ValueError "Invalid <label>: <value>" unless ok.
void check_hyper(bool ok, const char* label, double value);

/// A name read from a state file as it can appear in a message: printable ASCII kept, other
/// bytes as \xNN, at most 64 bytes ("..." after).
std::string printable(const std::string& s);

/// Tensor of the parameter's shape and dtype filled with value (state initialization).
Tensor full_like(const Tensor& t, double value);

}  // namespace emb::detail::optim
