// The fused backward + step's way into an optimizer: the checks step() makes, and the update of
// one parameter from a row-grouped sparse gradient (kernels/optim_rows.h).
#pragma once

#include <cstddef>

#include "emb/optim/optimizer.h"
#include "kernels/optim_rows.h"

namespace emb::detail {

struct FusedStepAccess {
  /// The index of param among opt's parameters, after every check step() would make for a sparse
  /// gradient of it, and that param holds no gradient yet. Throws ValueError (param not in opt,
  /// a pending gradient, a dtype, a read-only tensor, a state that no longer fits),
  /// NotImplementedError (an optimizer or option without a fused update), naming op.
  static std::size_t check(const emb::optim::Optimizer& opt, const Parameter& param, const char* op);
  /// Parameter i's step: its count advances, the rows are applied. Call check() first.
  static void apply(emb::optim::Optimizer& opt, std::size_t i, const SparseRows& rows);
};

}  // namespace emb::detail
