// Optimizer row updates over a row-sparse gradient given as groups of entries, one group per
// distinct table row. The same kernels serve an optimizer's step() on a SparseGrad (an entry is
// one value row) and the fused backward + step of the lookup modules (an entry is one looked-up
// position, its value computed from grad_output on the fly and never stored).
//
// The gradient of group g (table row rows[g]), entries e = starts[g] .. starts[g + 1] - 1:
//   v_e = grad[src[e]]                       (a row of dim elements)
//   v_e = v_e * scale[e]                     (when scale is given; one rounding per element)
//   v_e = v_e * T(1.0 / (starts[g + 1] - starts[g]))   (when freq: scale_grad_by_freq)
//   c   = v_first; c = c + v_next; ...       (coalesce: the entries in order, as SparseGrad)
//   c   = -c                                 (when maximize)
// then each kernel applies its optimizer's update to row rows[g] (see the ref twins in
// kernels/ref/optim_ref.h, which define the results bit for bit). Distinct groups touch distinct
// rows, so the fast kernels give threads contiguous ranges of groups and the result never depends
// on the thread count or the SIMD target.
#pragma once

#include <cstdint>

#include "emb/dtype.h"

namespace emb::detail {

/// A grouped row-sparse gradient (see above). float32 or float64.
struct SparseRows {
  DType dtype;
  std::int64_t dim;
  const void* grad;            // [num_sources, dim]
  std::int64_t num_sources;    // rows of grad
  std::int64_t num_groups;     // G
  const std::int64_t* rows;    // [G] the table row of each group, distinct
  const std::int64_t* starts;  // [G + 1] group g = entries starts[g] .. starts[g + 1] - 1
  const std::int64_t* src;     // [starts[G]] the grad row of each entry
  const void* scale;           // [starts[G]] or null
  bool freq;                   // scale_grad_by_freq: each entry times T(1 / group size)
  bool maximize;               // the gradient is negated after coalescing
};

/// RowWiseAdagrad (emb/optim/rowwise_adagrad.h), hyper-parameters as the options hold them;
/// each is rounded to the parameter dtype as the optimizer rounds it.
struct RowWiseAdagradHyper {
  double lr;
  double eps;
  double weight_decay;
};

/// Adagrad's sparse update; clr = lr / (1 + (step - 1) * lr_decay), computed in double.
struct AdagradHyper {
  double clr;
  double eps;
};

/// SGD without momentum: each entry is applied on its own, in order (PyTorch's
/// dense.add_(sparse, alpha=-lr) does not coalesce).
struct SgdHyper {
  double lr;
};

/// Adam / AdamW's element update (emb/optim/adam.h): the per-step constants, computed in double
/// as the optimizer computes them; each is rounded to the parameter dtype.
struct AdamHyper {
  bool maximize, l2, decoupled, amsgrad;
  double wd, decay, beta1, one_minus_beta1, beta2, one_minus_beta2, bc2_sqrt, eps, neg_step_size;
};

/// SparseAdam's row update (emb/optim/sparse_adam.h).
struct SparseAdamHyper {
  double one_minus_beta1, one_minus_beta2, eps, neg_step_size;
};

/// Adagrad's dense update (emb/optim/adagrad.h): clr as in AdagradHyper.
struct AdagradDenseHyper {
  double clr;
  double eps;
  double weight_decay;
  bool maximize;
};

/// SGD's dense update (emb/optim/sgd.h); buf (the momentum buffer) null when momentum is 0;
/// first: the buffer's first step (buf = d).
struct SgdDenseHyper {
  double lr, momentum, dampening, weight_decay;
  bool nesterov, maximize, first;
};

/// SGD's momentum update over a row-sparse buffer (emb/optim/sgd.h): slot s < used holds table
/// row rows[s] (distinct) and buffer row s; the coalesced gradient row grad_of_slot[s] of
/// values [*, dim] (negated when maximize) lands on it, or none (-1). Slots s >= old_used joined
/// the buffer this step (their rows are zero, or the first step's rows). Per slot, with
/// SgdDenseHyper's element update (maximize and weight_decay left out):
///   buf[s] = first ? d : fma(d, 1 - dampening, μ buf[s])   (no μ on a new slot; no d: μ buf[s])
///   θ[rows[s]] = fma(nesterov ? fma(buf[s], μ, d) : buf[s], -lr, θ[rows[s]])   (no d: d = 0)
struct SgdMomentumRows {
  DType dtype;
  std::int64_t dim;
  const void* values;                // [*, dim]
  std::int64_t used;                 // slots updated
  std::int64_t old_used;             // slots held before this step
  const std::int64_t* rows;          // [used]
  const std::int64_t* grad_of_slot;  // [used] a row of values, or -1
};

namespace fast {
/// w [*, dim], sum [*] (one accumulator per row).
void rowwise_adagrad_rows(const SparseRows& g, const RowWiseAdagradHyper& h, void* w, void* sum);
/// w, sum [*, dim].
void adagrad_rows(const SparseRows& g, const AdagradHyper& h, void* w, void* sum);
/// w [*, dim].
void sgd_rows(const SparseRows& g, const SgdHyper& h, void* w);
/// w [*, dim], buf [used, dim].
void sgd_momentum_rows(const SgdMomentumRows& m, const SgdDenseHyper& h, void* w, void* buf);
/// Lazy Adam over the rows of g: w, m, v (and vmax when amsgrad, else null) [*, dim]. The
/// maximize of h is ignored (g's applies).
void adam_rows(const SparseRows& g, const AdamHyper& h, void* w, void* m, void* v, void* vmax);
/// SparseAdam over the rows of g: w, m, s [*, dim].
void sparse_adam_rows(const SparseRows& g, const SparseAdamHyper& h, void* w, void* m, void* s);

/// Adam over n elements (a dense parameter): grad [n], w, m, v (vmax) [n].
void adam_dense(DType dtype, const AdamHyper& h, std::int64_t n, const void* grad, void* w, void* m,
                void* v, void* vmax);
/// Adagrad over n elements: grad [n], w, sum [n].
void adagrad_dense(DType dtype, const AdagradDenseHyper& h, std::int64_t n, const void* grad,
                   void* w, void* sum);
/// RowWiseAdagrad over every row of a dense gradient: grad, w [num_rows, dim], sum [num_rows].
void rowwise_adagrad_dense(DType dtype, const RowWiseAdagradHyper& h, bool maximize,
                           std::int64_t num_rows, std::int64_t dim, const void* grad, void* w,
                           void* sum);
/// SGD over n elements: grad, w [n], buf [n] or null.
void sgd_dense(DType dtype, const SgdDenseHyper& h, std::int64_t n, const void* grad, void* w,
               void* buf);
}  // namespace fast

}  // namespace emb::detail
