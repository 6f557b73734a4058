// emb/lookup_options.h — the options every embedding lookup shares, with chained setters:
//   EmbeddingOptions(10, 3).padding_idx(0).max_norm(1.0).sparse(true)
// Each name is both the setter (with an argument, returns the options) and the getter.
#pragma once

#include <cstdint>
#include <optional>

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

}  // namespace emb
