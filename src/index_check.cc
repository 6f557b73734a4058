#include "index_check.h"

#include <vector>

#include "kernels/fast.h"

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

void check_ids_in_range(const Tensor& ids, std::int64_t num_rows, const char* op, const char* arg) {
  const bool ok = visit_ids(ids, [&](const auto* p) {
    return fast::ids_in_range(p, sizeof(*p) == 8, ids.numel(), num_rows);
  });
  if (!ok) throw_first_id_out_of_range(ids, num_rows, op, arg);
}

void throw_first_id_out_of_range(const Tensor& ids, std::int64_t num_rows, const char* op,
                                 const char* arg) {
  visit_ids(ids, [&](const auto* p) {
    const std::int64_t n = ids.numel();
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t k = p[i];
      if (k < 0 || k >= num_rows) {
        throw IndexError(std::string(op) + ": " + arg + position_string(ids.shape(), i) + " = " +
                         std::to_string(k) + " is out of range for a table of " +
                         std::to_string(num_rows) + " rows");
      }
    }
  });
  // Not found again: the ids changed while they were read (another thread writing them).
  throw IndexError(std::string(op) + ": " + arg + " held an id out of range for a table of " +
                   std::to_string(num_rows) + " rows, and changed while being read");
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
