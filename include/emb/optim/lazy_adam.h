// emb/optim/lazy_adam.h — LazyAdam and LazyAdamW: Adam / AdamW that accept sparse gradients and
// update only the rows a batch touched (beyond PyTorch; like TensorFlow Addons' LazyAdam).
//
//   emb::optim::LazyAdam opt({&table.parameter()}, emb::optim::AdamOptions(1e-3));
//
// Dense gradient: exactly Adam / AdamW (bit for bit). Sparse gradient: g = coalesce(g); for each
// row r of g, Adam's (AdamW's) element update runs on θ[r], m[r], v[r] (vmax[r]) with the
// parameter's step count t (one per step() with a gradient, not per row). Rows not in g are not
// touched at all. How this differs from dense Adam on the same gradient made dense:
//   - an absent row's m and v do not decay (dense: m *= β1, v *= β2), so its next update uses the
//     moments of the last step that touched it;
//   - an absent row does not move (dense: it keeps moving while m != 0, and AdamW/L2 weight decay
//     applies to every row);
//   - bias correction uses the global t, so a row seen rarely is corrected as if it had been
//     decayed t times.
// A step where every row appears once gives exactly the dense result. A sparse step costs
// O(nnz log nnz + rows * dim), independent of the table size.
#pragma once

#include <vector>

#include "emb/optim/adam.h"

namespace emb::optim {

class LazyAdam : public AdamBase {
 public:
  /// Throws ValueError as Adam.
  LazyAdam(std::vector<Parameter*> params, const AdamOptions& options = AdamOptions());
  const AdamOptions& options() const { return options_; }
  const char* name() const override { return "LazyAdam"; }

 protected:
  void store_lr(double lr) override { options_.lr(lr); }

 private:
  AdamOptions options_;
};

class LazyAdamW : public AdamBase {
 public:
  /// Throws ValueError as AdamW. The decoupled decay θ[r] *= 1 - lr * weight_decay applies to
  /// the rows of the batch only.
  LazyAdamW(std::vector<Parameter*> params, const AdamWOptions& options = AdamWOptions());
  const AdamWOptions& options() const { return options_; }
  const char* name() const override { return "LazyAdamW"; }

 protected:
  void store_lr(double lr) override { options_.lr(lr); }

 private:
  AdamWOptions options_;
};

}  // namespace emb::optim
