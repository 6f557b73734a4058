#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <sstream>

#include "emb/embedding.h"
#include "index_check.h"

namespace emb {

namespace {

// Python's str() of a float: 2.0 -> "2.0", 1.5 -> "1.5", 1e-07 -> "1e-07", inf -> "inf".
std::string py_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  for (int precision = 1; precision <= 17; ++precision) {  // shortest repr that round-trips
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s = buf;
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

}  // namespace

Embedding::Embedding(const EmbeddingOptions& options) : Embedding(options, nullptr) {}

Embedding::Embedding(const EmbeddingOptions& options, Generator& generator)
    : Embedding(options, &generator) {}

Embedding::Embedding(const EmbeddingOptions& options, Generator* generator) : options_(options) {
  const std::int64_t num = options.num_embeddings();
  const std::int64_t dim = options.embedding_dim();
  checked_numel({num, dim}, "Embedding");
  options_.padding_idx(options.padding_idx()
                           ? std::optional(detail::normalize_padding_idx(options.padding_idx(), num,
                                                                         "Embedding"))
                           : std::nullopt);
  const Tensor& given = options._weight();
  if (given.defined()) {
    if (given.shape() != Shape{num, dim}) {
      throw ValueError("Embedding: _weight has shape " + shape_to_string(given.shape()) +
                       ", expected [" + std::to_string(num) + ", " + std::to_string(dim) +
                       "] (num_embeddings, embedding_dim)");
    }
    weight_ = Parameter(given, is_floating(given.dtype()));
    options_._weight(Tensor());
    return;
  }
  weight_ = Parameter(Tensor::empty({num, dim}, DType::kFloat32));
  reset_parameters(generator ? *generator : default_generator());
}

Embedding Embedding::from_pretrained(const Tensor& embeddings,
                                     const EmbeddingFromPretrainedOptions& options) {
  if (!embeddings.defined() || embeddings.dim() != 2) {
    throw ValueError("Embedding::from_pretrained: embeddings must be 2-D, got shape " +
                     (embeddings.defined() ? shape_to_string(embeddings.shape()) : "undefined"));
  }
  EmbeddingOptions opts(embeddings.size(0), embeddings.size(1));
  opts.padding_idx(options.padding_idx())
      .max_norm(options.max_norm())
      .norm_type(options.norm_type())
      .scale_grad_by_freq(options.scale_grad_by_freq())
      .sparse(options.sparse())
      ._weight(embeddings);
  Embedding m(opts);
  m.weight_.set_requires_grad(!options.freeze() && is_floating(embeddings.dtype()));
  return m;
}

EmbeddingFuncOptions Embedding::func_options() const {
  return EmbeddingFuncOptions()
      .padding_idx(options_.padding_idx())
      .max_norm(options_.max_norm())
      .norm_type(options_.norm_type())
      .scale_grad_by_freq(options_.scale_grad_by_freq())
      .sparse(options_.sparse());
}

Tensor Embedding::forward(const Tensor& input) {
  return embedding(input, weight_.data(), func_options());
}

void Embedding::backward(const Tensor& input, const Tensor& grad_output) {
  if (!weight_.requires_grad()) return;
  const std::int64_t num = options_.num_embeddings();
  if (grad_output.defined() && grad_output.dtype() != weight_.data().dtype()) {
    throw ValueError("Embedding::backward: grad_output has dtype " +
                     std::string(dtype_name(grad_output.dtype())) + ", the weight " +
                     std::string(dtype_name(weight_.data().dtype())));
  }
  if (grad_output.defined() && grad_output.dim() > 0 &&
      grad_output.size(-1) != options_.embedding_dim()) {
    throw ValueError("Embedding::backward: grad_output has shape " +
                     shape_to_string(grad_output.shape()) + ", last dimension must be " +
                     std::to_string(options_.embedding_dim()));
  }
  if (options_.sparse()) {
    weight_.accumulate_grad(embedding_sparse_backward(grad_output, input, num,
                                                      options_.padding_idx(),
                                                      options_.scale_grad_by_freq()));
  } else {
    weight_.accumulate_grad(embedding_dense_backward(grad_output, input, num,
                                                     options_.padding_idx(),
                                                     options_.scale_grad_by_freq()));
  }
}

void Embedding::reset_parameters() { reset_parameters(default_generator()); }

void Embedding::reset_parameters(Generator& generator) {
  const Tensor& w = weight_.data();
  generator.normal_(w);
  if (options_.padding_idx()) w.select(*options_.padding_idx()).fill_(0.0);
}

std::string Embedding::to_string() const {
  std::ostringstream s;
  s << "Embedding(" << options_.num_embeddings() << ", " << options_.embedding_dim();
  if (options_.padding_idx()) s << ", padding_idx=" << *options_.padding_idx();
  if (options_.max_norm()) s << ", max_norm=" << py_float(*options_.max_norm());
  if (options_.norm_type() != 2.0) s << ", norm_type=" << py_float(options_.norm_type());
  if (options_.scale_grad_by_freq()) s << ", scale_grad_by_freq=True";
  if (options_.sparse()) s << ", sparse=True";
  s << ")";
  return s.str();
}

std::ostream& operator<<(std::ostream& os, const Embedding& m) { return os << m.to_string(); }

}  // namespace emb
