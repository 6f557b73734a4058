// The EmbeddingBag module: a Parameter and the options; the work is in the functional layer.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <sstream>

#include "emb/embedding_bag.h"
#include "index_check.h"

namespace emb {

namespace {

// Python's repr() of a float: 2.0 -> "2.0", 1.5 -> "1.5", 1e-07 -> "1e-07", inf -> "inf".
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

void check_mode_options(const EmbeddingBagOptions& o) {
  if (o.mode() == EmbeddingBagMode::kMax && o.scale_grad_by_freq()) {
    throw ValueError("EmbeddingBag: mode max does not support scale_grad_by_freq");
  }
  if (o.mode() == EmbeddingBagMode::kMax && o.sparse()) {
    throw ValueError("EmbeddingBag: mode max does not support sparse gradients");
  }
}

}  // namespace

EmbeddingBag::EmbeddingBag(const EmbeddingBagOptions& options) : EmbeddingBag(options, nullptr) {}

EmbeddingBag::EmbeddingBag(const EmbeddingBagOptions& options, Generator& generator)
    : EmbeddingBag(options, &generator) {}

EmbeddingBag::EmbeddingBag(const EmbeddingBagOptions& options, Generator* generator)
    : options_(options) {
  const std::int64_t num = options.num_embeddings();
  const std::int64_t dim = options.embedding_dim();
  checked_numel({num, dim}, "EmbeddingBag");
  check_mode_options(options);
  options_.padding_idx(options.padding_idx()
                           ? std::optional(detail::normalize_padding_idx(options.padding_idx(), num,
                                                                         "EmbeddingBag"))
                           : std::nullopt);
  const Tensor& given = options._weight();
  if (given.defined()) {
    if (given.shape() != Shape{num, dim}) {
      throw ValueError("EmbeddingBag: _weight has shape " + shape_to_string(given.shape()) +
                       ", expected [" + std::to_string(num) + ", " + std::to_string(dim) +
                       "] (num_embeddings, embedding_dim)");
    }
    detail::check_floating(given, "EmbeddingBag", "_weight");
    weight_ = Parameter(given, true);
    options_._weight(Tensor());
    return;
  }
  weight_ = Parameter(Tensor::empty({num, dim}, DType::kFloat32));
  reset_parameters(generator ? *generator : default_generator());
}

EmbeddingBag EmbeddingBag::from_pretrained(const Tensor& embeddings,
                                           const EmbeddingBagFromPretrainedOptions& options) {
  if (!embeddings.defined() || embeddings.dim() != 2) {
    throw ValueError("EmbeddingBag::from_pretrained: embeddings must be 2-D, got shape " +
                     (embeddings.defined() ? shape_to_string(embeddings.shape()) : "undefined"));
  }
  EmbeddingBagOptions opts(embeddings.size(0), embeddings.size(1));
  opts.mode(options.mode())
      .include_last_offset(options.include_last_offset())
      .padding_idx(options.padding_idx())
      .max_norm(options.max_norm())
      .norm_type(options.norm_type())
      .scale_grad_by_freq(options.scale_grad_by_freq())
      .sparse(options.sparse())
      ._weight(embeddings);
  EmbeddingBag m(opts);
  m.weight_.set_requires_grad(!options.freeze());
  return m;
}

EmbeddingBagFuncOptions EmbeddingBag::func_options() const {
  return EmbeddingBagFuncOptions()
      .mode(options_.mode())
      .include_last_offset(options_.include_last_offset())
      .padding_idx(options_.padding_idx())
      .max_norm(options_.max_norm())
      .norm_type(options_.norm_type())
      .scale_grad_by_freq(options_.scale_grad_by_freq())
      .sparse(options_.sparse());
}

Tensor EmbeddingBag::forward(const Tensor& input, const Tensor& offsets,
                             const Tensor& per_sample_weights) {
  return embedding_bag(input, weight_.data(), offsets, func_options(), per_sample_weights);
}

Tensor EmbeddingBag::backward(const Tensor& input, const Tensor& offsets,
                              const Tensor& grad_output, const Tensor& per_sample_weights) {
  const Tensor& w = weight_.data();
  if (grad_output.defined() && grad_output.dtype() != w.dtype()) {
    throw ValueError("EmbeddingBag::backward: grad_output has dtype " +
                     std::string(dtype_name(grad_output.dtype())) + ", the weight " +
                     std::string(dtype_name(w.dtype())));
  }
  if (grad_output.defined() && grad_output.dim() == 2 &&
      grad_output.size(1) != options_.embedding_dim()) {
    throw ValueError("EmbeddingBag::backward: grad_output has shape " +
                     shape_to_string(grad_output.shape()) + ", its last dimension must be " +
                     std::to_string(options_.embedding_dim()));
  }
  // Compute every gradient first (each call validates), accumulate only when all succeeded.
  EmbeddingBagFuncOptions fo = func_options();
  fo.max_norm(std::nullopt);  // the forward already renormalized; the gradient ignores it
  Tensor psw_grad;
  if (per_sample_weights.defined()) {
    psw_grad = embedding_bag_per_sample_weights_backward(grad_output, w, input, offsets, fo);
  }
  if (!weight_.requires_grad()) return psw_grad;
  Tensor max_indices;
  if (fo.mode() == EmbeddingBagMode::kMax) {
    max_indices = embedding_bag_forward(input, w, offsets, fo).max_indices;
  }
  auto grad = embedding_bag_backward(grad_output, input, offsets, max_indices,
                                     options_.num_embeddings(), fo, per_sample_weights);
  if (auto* dense = std::get_if<Tensor>(&grad)) {
    weight_.accumulate_grad(*dense);
  } else {
    weight_.accumulate_grad(std::get<SparseGrad>(grad));
  }
  return psw_grad;
}

void EmbeddingBag::reset_parameters() { reset_parameters(default_generator()); }

void EmbeddingBag::reset_parameters(Generator& generator) {
  const Tensor& w = weight_.data();
  generator.normal_(w);
  if (options_.padding_idx()) w.select(*options_.padding_idx()).fill_(0.0);
}

std::string EmbeddingBag::to_string() const {
  std::ostringstream s;
  s << "EmbeddingBag(" << options_.num_embeddings() << ", " << options_.embedding_dim();
  if (options_.max_norm()) s << ", max_norm=" << py_float_repr(*options_.max_norm());
  if (options_.norm_type() != 2.0) s << ", norm_type=" << py_float_repr(options_.norm_type());
  if (options_.scale_grad_by_freq()) s << ", scale_grad_by_freq=True";
  s << ", mode='" << mode_name(options_.mode()) << "'";
  if (options_.padding_idx()) s << ", padding_idx=" << *options_.padding_idx();
  s << ")";
  return s.str();
}

std::ostream& operator<<(std::ostream& os, const EmbeddingBag& m) { return os << m.to_string(); }

}  // namespace emb
