// Fast id range check: whether every id lies in [0, num_rows), in one branch-free SIMD pass (the
// functional layer's validation before any kernel writes). Twin: ref::ids_in_range.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/id_range.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/fast.h"

HWY_BEFORE_NAMESPACE();
namespace emb::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Whether every p[i] as unsigned is below `limit` (a negative id, as unsigned, is past every
// limit a table can have): any lane past limit - 1 is remembered in `bad`, four vectors at a
// time.
template <typename U>
bool BelowLimit(const U* p, std::int64_t n, U limit) {
  const hn::ScalableTag<U> d;
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
  const auto last = hn::Set(d, static_cast<U>(limit - 1));  // limit > 0
  auto bad0 = hn::Zero(d), bad1 = hn::Zero(d), bad2 = hn::Zero(d), bad3 = hn::Zero(d);
  std::int64_t i = 0;
  for (; i + 4 * lanes <= n; i += 4 * lanes) {
    bad0 = hn::Or(bad0, hn::VecFromMask(d, hn::Gt(hn::LoadU(d, p + i), last)));
    bad1 = hn::Or(bad1, hn::VecFromMask(d, hn::Gt(hn::LoadU(d, p + i + lanes), last)));
    bad2 = hn::Or(bad2, hn::VecFromMask(d, hn::Gt(hn::LoadU(d, p + i + 2 * lanes), last)));
    bad3 = hn::Or(bad3, hn::VecFromMask(d, hn::Gt(hn::LoadU(d, p + i + 3 * lanes), last)));
  }
  for (; i + lanes <= n; i += lanes) {
    bad0 = hn::Or(bad0, hn::VecFromMask(d, hn::Gt(hn::LoadU(d, p + i), last)));
  }
  const auto bad = hn::Or(hn::Or(bad0, bad1), hn::Or(bad2, bad3));
  if (!hn::AllTrue(d, hn::Eq(bad, hn::Zero(d)))) return false;
  for (; i < n; ++i) {
    if (p[i] >= limit) return false;
  }
  return true;
}

bool IdsInRange(const void* ids, bool ids64, std::int64_t n, std::int64_t num_rows) {
  if (num_rows <= 0) return n == 0;
  if (ids64) {
    return BelowLimit(static_cast<const std::uint64_t*>(ids), n,
                      static_cast<std::uint64_t>(num_rows));
  }
  // int32 ids: a negative one, as unsigned 32-bit, is at least 2^31, past every table that an
  // int32 id can address whole; a bigger table only needs the ids to be non-negative.
  constexpr std::int64_t kSignBit = std::int64_t{1} << 31;
  return BelowLimit(static_cast<const std::uint32_t*>(ids), n,
                    static_cast<std::uint32_t>(num_rows < kSignBit ? num_rows : kSignBit));
}

}  // namespace emb::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace emb::detail {

HWY_EXPORT(IdsInRange);

namespace {

// A few ids, without the dispatch: one unsigned comparison per id (a negative id, widened and
// taken as unsigned, is past every limit), the outcomes or-ed together and tested once, so that
// a serving call's bag of 20 ids costs no branch per id.
template <typename Index>
bool FewIdsInRange(const Index* ids, std::int64_t n, std::int64_t num_rows) {
  if (num_rows <= 0) return n == 0;
  const auto limit = static_cast<std::uint64_t>(num_rows);
  bool bad = false;
  for (std::int64_t i = 0; i < n; ++i) {
    bad |= static_cast<std::uint64_t>(static_cast<std::int64_t>(ids[i])) >= limit;
  }
  return !bad;
}

}  // namespace

bool fast::ids_in_range(const void* ids, bool ids64, std::int64_t n, std::int64_t num_rows) {
  if (n < 64) {
    return ids64 ? FewIdsInRange(static_cast<const std::int64_t*>(ids), n, num_rows)
                 : FewIdsInRange(static_cast<const std::int32_t*>(ids), n, num_rows);
  }
  return EMB_DISPATCH(IdsInRange)(ids, ids64, n, num_rows);
}

}  // namespace emb::detail
#endif  // HWY_ONCE
