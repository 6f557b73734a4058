#include <ostream>
#include <sstream>

#include "emb/embedding.h"
#include "index_check.h"
#include "module_common.h"

namespace emb {

Embedding::Embedding(const EmbeddingOptions& options) : Embedding(options, nullptr) {}

Embedding::Embedding(const EmbeddingOptions& options, Generator& generator)
    : Embedding(options, &generator) {}

Embedding::Embedding(const EmbeddingOptions& options, Generator* generator)
    : options_(options),
      weight_(detail::make_module_weight(options._weight(), options.num_embeddings(),
                                         options.embedding_dim(), "Embedding")) {
  options_.padding_idx(
      detail::module_padding_idx(options.padding_idx(), options.num_embeddings(), "Embedding"));
  options_._weight(Tensor());  // the module holds the weight; the options keep no second handle
  if (!options._weight().defined()) reset_parameters(generator ? *generator : default_generator());
}

Embedding Embedding::from_pretrained(const Tensor& embeddings,
                                     const EmbeddingFromPretrainedOptions& options) {
  detail::check_pretrained(embeddings, "Embedding::from_pretrained");
  Embedding m(EmbeddingOptions(embeddings.size(0), embeddings.size(1))
                  .lookup_options(options)
                  ._weight(embeddings));
  m.weight_.set_requires_grad(!options.freeze() && is_floating(embeddings.dtype()));
  return m;
}

EmbeddingFuncOptions Embedding::func_options() const {
  return EmbeddingFuncOptions().lookup_options(options_);
}

Tensor Embedding::forward(const Tensor& input) {
  return embedding(input, weight_.data(), func_options());
}

void Embedding::backward(const Tensor& input, const Tensor& grad_output) {
  detail::check_weight_2d(weight_.data(), "Embedding::backward");
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
  if (!weight_.requires_grad()) {  // nothing to compute, but bad input is still an error
    detail::check_embedding_backward_args("Embedding::backward", grad_output, input, num,
                                          options_.padding_idx());
    return;
  }
  if (options_.sparse()) {
    weight_.accumulate_grad(embedding_sparse_backward(
        grad_output, input, num, options_.padding_idx(), options_.scale_grad_by_freq()));
  } else {
    weight_.accumulate_grad(embedding_dense_backward(
        grad_output, input, num, options_.padding_idx(), options_.scale_grad_by_freq()));
  }
}

void Embedding::reset_parameters() {
  reset_parameters(default_generator());
}

void Embedding::reset_parameters(Generator& generator) {
  const Tensor& w = weight_.data();
  w.check_writable("Embedding::reset_parameters");
  detail::check_reset_weight(w, options_.padding_idx(), "Embedding::reset_parameters");
  generator.normal_(w);
  if (options_.padding_idx()) w.select(*options_.padding_idx()).fill_(0.0);
}

std::string Embedding::to_string() const {
  std::ostringstream s;
  s << "Embedding(" << options_.num_embeddings() << ", " << options_.embedding_dim();
  if (options_.padding_idx()) s << ", padding_idx=" << *options_.padding_idx();
  if (options_.max_norm()) s << ", max_norm=" << detail::py_float_repr(*options_.max_norm());
  if (options_.norm_type() != 2.0)
    s << ", norm_type=" << detail::py_float_repr(options_.norm_type());
  if (options_.scale_grad_by_freq()) s << ", scale_grad_by_freq=True";
  if (options_.sparse()) s << ", sparse=True";
  s << ")";
  return s.str();
}

std::ostream& operator<<(std::ostream& os, const Embedding& m) {
  return os << m.to_string();
}

}  // namespace emb
