#include "module_common.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "index_check.h"

namespace emb::detail {

std::string py_float_repr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  for (int precision = 1; precision <= 17; ++precision) {  // shortest text that round-trips
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s = buf;
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

Parameter make_module_weight(const Tensor& given, std::int64_t num, std::int64_t dim,
                             const char* module) {
  checked_numel({num, dim}, module);
  if (!given.defined()) return Parameter(Tensor::empty({num, dim}, DType::kFloat32));
  if (given.shape() != Shape{num, dim}) {
    throw ValueError(std::string(module) + ": _weight has shape " + shape_to_string(given.shape()) +
                     ", expected [" + std::to_string(num) + ", " + std::to_string(dim) +
                     "] (num_embeddings, embedding_dim)");
  }
  return Parameter(given, is_floating(given.dtype()));
}

std::optional<std::int64_t> module_padding_idx(std::optional<std::int64_t> padding_idx,
                                               std::int64_t num, const char* module) {
  if (!padding_idx) return std::nullopt;
  return normalize_padding_idx(padding_idx, num, module);
}

void check_pretrained(const Tensor& embeddings, const char* what) {
  if (!embeddings.defined() || embeddings.dim() != 2) {
    throw ValueError(std::string(what) + ": embeddings must be 2-D, got shape " +
                     (embeddings.defined() ? shape_to_string(embeddings.shape()) : "undefined"));
  }
}

}  // namespace emb::detail
