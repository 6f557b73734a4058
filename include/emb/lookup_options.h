// emb/lookup_options.h — the options every embedding lookup shares, with chained setters:
//   EmbeddingOptions(10, 3).padding_idx(0).max_norm(1.0).sparse(true)
// Each name is both the setter (with an argument, returns the options) and the getter.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>

#include "emb/tensor.h"

namespace emb {

template <typename Derived>
class LookupOptions {
 public:
  /// Row whose entries get no gradient; negative counts from the end (-1 is the last row).
  Derived& padding_idx(std::optional<std::int64_t> v) { return set(padding_idx_, v); }
  std::optional<std::int64_t> padding_idx() const { return padding_idx_; }
  /// Rows looked up with a norm above max_norm are renormalized (in place) to max_norm.
  Derived& max_norm(std::optional<double> v) { return set(max_norm_, v); }
  std::optional<double> max_norm() const { return max_norm_; }
  /// p of the p-norm used with max_norm: 2, 1, inf, -inf, 0 (non-zero count), any real.
  Derived& norm_type(double v) { return set(norm_type_, v); }
  double norm_type() const { return norm_type_; }
  /// Scale each row's gradient by 1 / (its number of occurrences in the call).
  Derived& scale_grad_by_freq(bool v) { return set(scale_grad_by_freq_, v); }
  bool scale_grad_by_freq() const { return scale_grad_by_freq_; }
  /// Produce a row-sparse gradient instead of a dense one.
  Derived& sparse(bool v) { return set(sparse_, v); }
  bool sparse() const { return sparse_; }

  /// Takes all five lookup options from another options object (of any options type).
  template <typename Other>
  Derived& lookup_options(const LookupOptions<Other>& o) {
    padding_idx_ = o.padding_idx();
    max_norm_ = o.max_norm();
    norm_type_ = o.norm_type();
    scale_grad_by_freq_ = o.scale_grad_by_freq();
    sparse_ = o.sparse();
    return static_cast<Derived&>(*this);
  }

 private:
  template <typename T, typename V>
  Derived& set(T& field, V v) {
    field = v;
    return static_cast<Derived&>(*this);
  }

  std::optional<std::int64_t> padding_idx_;
  std::optional<double> max_norm_;
  double norm_type_ = 2.0;
  bool scale_grad_by_freq_ = false;
  bool sparse_ = false;
};

/// What a module's options add to Base (its lookup options): the table size and an optional
/// _weight. Derived is the final options type, which every setter returns.
template <typename Derived, typename Base>
class TableOptions : public Base {
 public:
  TableOptions(std::int64_t num_embeddings, std::int64_t embedding_dim)
      : num_embeddings_(num_embeddings), embedding_dim_(embedding_dim) {}
  std::int64_t num_embeddings() const { return num_embeddings_; }
  std::int64_t embedding_dim() const { return embedding_dim_; }
  /// Use this [num_embeddings, embedding_dim] tensor as the weight, sharing its storage; the
  /// module then does not initialize it (its padding row is left as given).
  Derived& _weight(Tensor w) {
    weight_ = std::move(w);
    return static_cast<Derived&>(*this);
  }
  const Tensor& _weight() const { return weight_; }

 private:
  std::int64_t num_embeddings_;
  std::int64_t embedding_dim_;
  Tensor weight_;
};

/// What from_pretrained's options add to Base: freeze (default true: the table gets no gradient).
template <typename Derived, typename Base>
class PretrainedOptions : public Base {
 public:
  Derived& freeze(bool v) {
    freeze_ = v;
    return static_cast<Derived&>(*this);
  }
  bool freeze() const { return freeze_; }

 private:
  bool freeze_ = true;
};

}  // namespace emb
