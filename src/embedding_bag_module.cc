// The EmbeddingBag module: a Parameter and the options; the work is in the functional layer.
#include <ostream>
#include <sstream>
#include <utility>

#include "emb/embedding_bag.h"
#include "index_check.h"
#include "module_common.h"

namespace emb {

namespace {

void check_mode_options(const EmbeddingBagOptions& o) {
  detail::check_bag_mode(o.mode(), "EmbeddingBag");
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
    : options_(options),
      weight_(detail::make_module_weight(options._weight(), options.num_embeddings(),
                                         options.embedding_dim(), "EmbeddingBag")) {
  check_mode_options(options);
  options_.padding_idx(
      detail::module_padding_idx(options.padding_idx(), options.num_embeddings(), "EmbeddingBag"));
  if (options._weight().defined())
    detail::check_floating(options._weight(), "EmbeddingBag", "_weight");
  options_._weight(Tensor());  // the module holds the weight; the options keep no second handle
  if (!options._weight().defined()) reset_parameters(generator ? *generator : default_generator());
}

EmbeddingBag EmbeddingBag::from_pretrained(const Tensor& embeddings,
                                           const EmbeddingBagFromPretrainedOptions& options) {
  detail::check_pretrained(embeddings, "EmbeddingBag::from_pretrained");
  EmbeddingBag m(EmbeddingBagOptions(embeddings.size(0), embeddings.size(1))
                     .bag_options(options)
                     ._weight(embeddings));
  m.weight_.set_requires_grad(!options.freeze());
  return m;
}

EmbeddingBagFuncOptions EmbeddingBag::func_options() const {
  return EmbeddingBagFuncOptions().bag_options(options_);
}

Tensor EmbeddingBag::forward(const Tensor& input, const Tensor& offsets,
                             const Tensor& per_sample_weights) {
  return embedding_bag(input, weight_.data(), offsets, func_options(), per_sample_weights);
}

Tensor EmbeddingBag::backward(const Tensor& input, const Tensor& offsets, const Tensor& grad_output,
                              const Tensor& per_sample_weights) {
  const Tensor& w = weight_.data();
  detail::check_weight_2d(w, "EmbeddingBag::backward");
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
  fo.max_norm(std::nullopt);       // the forward already renormalized; the gradient ignores it
  if (!weight_.requires_grad()) {  // no weight gradient, but bad input is still an error
    detail::check_embedding_bag_backward_args("EmbeddingBag::backward", grad_output, input, offsets,
                                              options_.num_embeddings(), fo, per_sample_weights);
  }
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
    weight_.accumulate_grad(std::move(*dense));
  } else {
    weight_.accumulate_grad(std::get<SparseGrad>(grad));
  }
  return psw_grad;
}

void EmbeddingBag::reset_parameters() {
  reset_parameters(default_generator());
}

void EmbeddingBag::reset_parameters(Generator& generator) {
  const Tensor& w = weight_.data();
  w.check_writable("EmbeddingBag::reset_parameters");
  detail::check_reset_weight(w, options_.padding_idx(), "EmbeddingBag::reset_parameters");
  generator.normal_(w);
  if (options_.padding_idx()) w.select(*options_.padding_idx()).fill_(0.0);
}

std::string EmbeddingBag::to_string() const {
  std::ostringstream s;
  s << "EmbeddingBag(" << options_.num_embeddings() << ", " << options_.embedding_dim();
  if (options_.max_norm()) s << ", max_norm=" << detail::py_float_repr(*options_.max_norm());
  if (options_.norm_type() != 2.0)
    s << ", norm_type=" << detail::py_float_repr(options_.norm_type());
  if (options_.scale_grad_by_freq()) s << ", scale_grad_by_freq=True";
  s << ", mode='" << mode_name(options_.mode()) << "'";
  if (options_.padding_idx()) s << ", padding_idx=" << *options_.padding_idx();
  s << ")";
  return s.str();
}

std::ostream& operator<<(std::ostream& os, const EmbeddingBag& m) {
  return os << m.to_string();
}

}  // namespace emb
