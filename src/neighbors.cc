// Exact cosine neighbours: validate, normalize the query, call the fast kernels.
#include "emb/neighbors.h"

#include <algorithm>
#include <string>
#include <vector>

#include "emb/error.h"
#include "kernels/fast.h"
#include "kernels/ref/neighbors_ref.h"

namespace emb {

namespace {

void check_table(const Tensor& table, const char* op) {
  if (!table.defined() || table.dim() != 2 || table.dtype() != DType::kFloat32) {
    throw ValueError(std::string(op) + ": table must be a 2-D float32 tensor, got " +
                     (table.defined() ? shape_to_string(table.shape()) + " " +
                                            std::string(dtype_name(table.dtype()))
                                      : std::string("an undefined tensor")));
  }
}

}  // namespace

Tensor row_inverse_norms(const Tensor& table) {
  check_table(table, "row_inverse_norms");
  const std::int64_t rows = table.size(0);
  Tensor out = Tensor::empty({rows}, DType::kFloat32);
  detail::fast::row_inverse_norms(table.data<float>(), rows, table.size(1), out.data<float>());
  return out;
}

CosineNeighbors cosine_top_k(const Tensor& table, const Tensor& inverse_norms, const Tensor& query,
                             std::int64_t k, std::int64_t exclude) {
  const char* op = "cosine_top_k";
  check_table(table, op);
  const std::int64_t rows = table.size(0);
  const std::int64_t dim = table.size(1);
  if (!inverse_norms.defined() || inverse_norms.dtype() != DType::kFloat32 ||
      inverse_norms.shape() != Shape{rows}) {
    throw ValueError(std::string(op) + ": inverse_norms must be float32 [" + std::to_string(rows) +
                     "] (row_inverse_norms of the table)");
  }
  if (!query.defined() || query.numel() != dim || query.dim() != 1 || !is_floating(query.dtype())) {
    throw ValueError(std::string(op) + ": query must be a floating [" + std::to_string(dim) +
                     "] tensor" +
                     (query.defined() ? ", got " + shape_to_string(query.shape()) : ""));
  }
  if (k < 0) throw ValueError(std::string(op) + ": k = " + std::to_string(k) + " is negative");
  if (exclude < -1 || exclude >= rows) {
    throw ValueError(std::string(op) + ": exclude = " + std::to_string(exclude) +
                     " is not a row of a table of " + std::to_string(rows) + " rows (or -1)");
  }
  const Tensor q = query.dtype() == DType::kFloat32 ? query : query.to(DType::kFloat32);
  const float* qp = q.data<float>();
  const float inv = detail::ref::inverse_norm(detail::ref::dot16(qp, qp, dim));
  std::vector<float> unit(static_cast<std::size_t>(dim));
  for (std::int64_t d = 0; d < dim; ++d) unit[static_cast<std::size_t>(d)] = qp[d] * inv;
  const std::int64_t cap = std::min(k, rows);
  CosineNeighbors out;
  out.ids.resize(static_cast<std::size_t>(cap));
  out.scores.resize(static_cast<std::size_t>(cap));
  std::int64_t found = 0;
  detail::fast::cosine_top_k({table.data<float>(), rows, dim, inverse_norms.data<float>(),
                              unit.data(), k, exclude, out.ids.data(), out.scores.data(), &found});
  out.ids.resize(static_cast<std::size_t>(found));
  out.scores.resize(static_cast<std::size_t>(found));
  return out;
}

}  // namespace emb
