#include "index_check.h"

#include <algorithm>
#include <vector>

namespace emb::detail {

std::string position_string(const Shape& shape, std::int64_t flat) {
  std::vector<std::int64_t> pos(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    pos[d] = shape[d] == 0 ? 0 : flat % shape[d];
    flat = shape[d] == 0 ? 0 : flat / shape[d];
  }
  std::string s;
  for (std::int64_t p : pos) s += "[" + std::to_string(p) + "]";
  return s;
}

void check_index_dtype(const Tensor& t, const char* op, const char* arg) {
  if (!t.defined()) throw ValueError(std::string(op) + ": " + arg + " is undefined");
  if (t.dtype() != DType::kInt32 && t.dtype() != DType::kInt64) {
    throw ValueError(std::string(op) + ": " + arg + " must be int32 or int64, got " +
                     std::string(dtype_name(t.dtype())));
  }
}

namespace {

// Whether every id lies in [0, num_rows): the largest id seen as unsigned (a negative one is then
// past every num_rows), in one pass without a branch per id, 4 running maxima side by side.
template <typename I>
bool all_in_range(const I* p, std::int64_t n, std::int64_t num_rows) {
  const auto u = [&](std::int64_t i) {
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(p[i]));
  };
  std::uint64_t m0 = 0, m1 = 0, m2 = 0, m3 = 0;
  std::int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    m0 = std::max(m0, u(i));
    m1 = std::max(m1, u(i + 1));
    m2 = std::max(m2, u(i + 2));
    m3 = std::max(m3, u(i + 3));
  }
  for (; i < n; ++i) m0 = std::max(m0, u(i));
  return std::max(std::max(m0, m1), std::max(m2, m3)) < static_cast<std::uint64_t>(num_rows);
}

}  // namespace

void check_ids_in_range(const Tensor& ids, std::int64_t num_rows, const char* op, const char* arg) {
  visit_ids(ids, [&](const auto* p) {
    const std::int64_t n = ids.numel();
    if (num_rows >= 0 && all_in_range(p, n, num_rows)) return;
    // Some id is out of range: find the first, for the message.
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t k = p[i];
      if (k < 0 || k >= num_rows) {
        throw IndexError(std::string(op) + ": " + arg + position_string(ids.shape(), i) + " = " +
                         std::to_string(k) + " is out of range for a table of " +
                         std::to_string(num_rows) + " rows");
      }
    }
  });
}

std::int64_t normalize_padding_idx(std::optional<std::int64_t> padding_idx, std::int64_t num_rows,
                                   const char* op) {
  if (!padding_idx) return -1;
  const std::int64_t p = *padding_idx;
  if (p < -num_rows || p >= num_rows) {
    throw IndexError(std::string(op) + ": padding_idx = " + std::to_string(p) +
                     " is out of range for a table of " + std::to_string(num_rows) +
                     " rows (valid: " + std::to_string(-num_rows) + " to " +
                     std::to_string(num_rows - 1) + ")");
  }
  return p < 0 ? p + num_rows : p;
}

void check_weight_2d(const Tensor& weight, const char* op) {
  if (!weight.defined()) throw ValueError(std::string(op) + ": weight is undefined");
  if (weight.dim() != 2) {
    throw ValueError(std::string(op) + ": weight must be 2-D, got shape " +
                     shape_to_string(weight.shape()));
  }
}

void check_out(const Tensor& out, DType dtype, std::span<const std::int64_t> prefix,
               std::int64_t last, const char* op, std::initializer_list<const Tensor*> inputs,
               std::initializer_list<const char*> names) {
  if (!out.defined()) throw ValueError(std::string(op) + ": out is undefined");
  if (out.dtype() != dtype) {
    throw ValueError(std::string(op) + ": out has dtype " + std::string(dtype_name(out.dtype())) +
                     ", expected " + std::string(dtype_name(dtype)) + " (the weight's)");
  }
  const Shape& shape = out.shape();
  if (shape.size() != prefix.size() + 1 || shape.back() != last ||
      !std::equal(prefix.begin(), prefix.end(), shape.begin())) {
    Shape expected(prefix.begin(), prefix.end());
    expected.push_back(last);
    throw ValueError(std::string(op) + ": out has shape " + shape_to_string(shape) + ", expected " +
                     shape_to_string(expected));
  }
  if (out.is_read_only()) out.check_writable((std::string(op) + ": out").c_str());
  const char* const* name = names.begin();
  for (const Tensor* t : inputs) {
    if (t->defined() && out.shares_storage_with(*t)) {
      throw ValueError(std::string(op) + ": out shares memory with " + *name +
                       " (the output must be a separate tensor)");
    }
    ++name;
  }
}

void check_floating(const Tensor& t, const char* op, const char* arg) {
  if (!t.defined()) throw ValueError(std::string(op) + ": " + arg + " is undefined");
  if (!is_floating(t.dtype())) {
    throw ValueError(std::string(op) + ": " + arg +
                     " must be float32, float64, float16 or bfloat16, got " +
                     std::string(dtype_name(t.dtype())));
  }
}

}  // namespace emb::detail
