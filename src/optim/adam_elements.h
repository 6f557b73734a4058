// Adam's element update and its per-step constants, shared by the Adam family and the fused
// step of a table collection (collection/collection_ops.cc): one definition of the arithmetic.
#pragma once

#include <cmath>
#include <cstdint>

#include "emb/optim/adam.h"
#include "optim/ops.h"

namespace emb::detail::optim {

// The per-step constants of Adam's element update, in the parameter's dtype.
template <typename T>
struct Coeffs {
  bool maximize, l2, decoupled, amsgrad;
  T wd, decay, beta1, one_minus_beta1, beta2, one_minus_beta2, bc2_sqrt, eps, neg_step_size;
};

template <typename T>
inline Coeffs<T> make_coeffs(const emb::optim::detail_adam::Config& c, std::int64_t step) {
  const double t = static_cast<double>(step);
  const double bias_correction1 = 1 - std::pow(c.beta1, t);
  const double bias_correction2 = 1 - std::pow(c.beta2, t);
  Coeffs<T> k{};
  k.maximize = c.maximize;
  k.l2 = !c.decoupled && c.weight_decay != 0.0;
  k.decoupled = c.decoupled && c.weight_decay != 0.0;
  k.amsgrad = c.amsgrad;
  k.wd = static_cast<T>(c.weight_decay);
  k.decay = static_cast<T>(1 - c.lr * c.weight_decay);
  k.beta1 = static_cast<T>(c.beta1);
  k.one_minus_beta1 = static_cast<T>(1 - c.beta1);
  k.beta2 = static_cast<T>(c.beta2);
  k.one_minus_beta2 = static_cast<T>(1 - c.beta2);
  k.bc2_sqrt = static_cast<T>(std::sqrt(bias_correction2));
  k.eps = static_cast<T>(c.eps);
  k.neg_step_size = static_cast<T>(-(c.lr / bias_correction1));
  return k;
}

// Adam's update of n consecutive elements (a whole dense parameter, or one row).
template <typename T>
inline void adam_elements(T* w, const T* grad, T* m, T* v, T* vmax, std::int64_t n, const Coeffs<T>& k) {
  for (std::int64_t e = 0; e < n; ++e) {
    T g = k.maximize ? -grad[e] : grad[e];
    if (k.decoupled) w[e] = w[e] * k.decay;          // θ *= 1 - lr * wd
    if (k.l2) g = add_alpha<T>(g, w[e], k.wd);  // g += wd * θ
    m[e] = add_alpha<T>(m[e] * k.beta1, g, k.one_minus_beta1);
    v[e] = addcmul<T>(v[e] * k.beta2, g, g, k.one_minus_beta2);
    T second = v[e];
    if (k.amsgrad) second = vmax[e] = maximum<T>(vmax[e], v[e]);
    const T denom = std::sqrt(second) / k.bc2_sqrt + k.eps;
    w[e] = addcdiv<T>(w[e], m[e], denom, k.neg_step_size);
  }
}

}  // namespace emb::detail::optim
