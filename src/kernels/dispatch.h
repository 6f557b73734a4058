// The one place where a fast kernel's SIMD target is chosen. Each kernel file compiles its
// per-target code with Highway's foreach_target and exports it with HWY_EXPORT; its wrapper calls
// EMB_DISPATCH(Name)(args), which picks the entry of the target emb::simd_target() names.
#pragma once

#include <hwy/highway.h>

#include "runtime_internal.h"

/// The chosen target's instance of a kernel exported with HWY_EXPORT in this translation unit.
#if (HWY_TARGETS & (HWY_TARGETS - 1)) == 0
// One target compiled (the fuzz build's portable one): HWY_EXPORT's table has that one entry. The
// index is still asked for, as it resolves the thread count before any kernel starts.
#define EMB_DISPATCH(FUNC) \
  ((void)::emb::detail::simd_dispatch_index(), *(HWY_DISPATCH_TABLE(FUNC)[0]))
#else
#define EMB_DISPATCH(FUNC) (*(HWY_DISPATCH_TABLE(FUNC)[::emb::detail::simd_dispatch_index()]))
#endif
