// Linked into every parity binary: EMB_TEST_MIN_WORK=<elements> lowers the work below which a
// fast kernel stays on one thread, so that the suite's small inputs also run split across
// threads (CTest sets it for the 3-thread runs). Unset: the library's default.
#include <cstdlib>

#include "runtime_internal.h"

namespace {

const bool kApplied = [] {
  const char* env = std::getenv("EMB_TEST_MIN_WORK");
  if (env && *env) emb::detail::set_min_work_per_thread(std::atoll(env));
  return true;
}();

}  // namespace
