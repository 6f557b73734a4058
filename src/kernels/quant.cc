// Fast kernels of row-wise quantized tables: lookup (dequantize rows) and bags (sum with or
// without per-sample weights, max), threads over ranges of rows or bags. A row is dequantized
// Lanes elements at a time (codes widened to float exactly, then float(q) * scale + bias as two
// rounded operations) and combined into the output row as the twin does element by element;
// int4 codes are first unpacked into a small buffer. Rows are prefetched a few ids ahead.
// Twins: ref::quant_gather_rows, ref::quant_bag_sum, ref::quant_bag_max.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/quant.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/fast.h"
#include "kernels/parallel.h"
#include "kernels/ref/quant_ref.h"
#include "kernels/simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace emb::detail::HWY_NAMESPACE {

// How a dequantized row enters the output.
enum QuantCombine { kStore, kAdd, kFusedWeight, kUnfusedWeight, kMax };

template <int Bits>
class QuantRows {
 public:
  using D = hn::ScalableTag<float>;
  using V = hn::Vec<D>;

  QuantRows(const std::uint8_t* table, std::int64_t dim)
      : table_(table), dim_(dim), row_bytes_(ref::quant_row_bytes<Bits>(dim)) {
    if constexpr (Bits == 4) codes_.resize(static_cast<std::size_t>(dim) + hn::MaxLanes(D()));
  }

  const std::uint8_t* Row(std::int64_t r) const { return table_ + r * row_bytes_; }
  std::size_t RowBytes() const { return static_cast<std::size_t>(row_bytes_); }

  // o = combine(o, row r), weight w (kFusedWeight / kUnfusedWeight), first (kMax).
  template <QuantCombine kMode>
  void Combine(std::int64_t r, float w, bool first, float* HWY_RESTRICT o) {
    const D d;
    const hn::Rebind<std::uint8_t, D> d8;
    const hn::RebindToSigned<D> di;
    const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
    const std::uint8_t* row = Row(r);
    float scale, bias;
    ref::quant_scale_bias<Bits>(row, dim_, scale, bias);
    const std::uint8_t* codes = row;
    if constexpr (Bits == 4) {
      codes = Unpack4(row);
    }
    const V vs = hn::Set(d, scale), vb = hn::Set(d, bias), vw = hn::Set(d, w);
    std::int64_t c = 0;
    for (; c + lanes <= dim_; c += lanes) {
      const V q = hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(d8, codes + c)));
      const V v = hn::Add(hn::Mul(q, vs), vb);
      if constexpr (kMode == kStore) {
        hn::StoreU(v, d, o + c);
      } else if constexpr (kMode == kMax) {
        if (first) {
          hn::StoreU(v, d, o + c);
        } else {
          const V cur = hn::LoadU(d, o + c);
          hn::StoreU(hn::IfThenElse(hn::Gt(v, cur), v, cur), d, o + c);
        }
      } else {
        const V cur = hn::LoadU(d, o + c);
        V next;
        if constexpr (kMode == kAdd) {
          next = hn::Add(cur, v);
        } else if constexpr (kMode == kFusedWeight) {
          next = FusedMulAdd(d, v, vw, cur);
        } else {
          next = hn::Add(cur, hn::Mul(v, vw));
        }
        hn::StoreU(next, d, o + c);
      }
    }
    for (; c < dim_; ++c) {  // the tail, as the twin
      const float prod = static_cast<float>(codes[c]) * scale;
      const float v = prod + bias;
      if constexpr (kMode == kStore) {
        o[c] = v;
      } else if constexpr (kMode == kMax) {
        if (first || v > o[c]) o[c] = v;
      } else if constexpr (kMode == kAdd) {
        o[c] = o[c] + v;
      } else if constexpr (kMode == kFusedWeight) {
        o[c] = std::fma(v, w, o[c]);
      } else {
        const float p = v * w;
        o[c] = o[c] + p;
      }
    }
  }

 private:
  // The int4 codes of a row, one byte each, in element order. Vectors of bytes b are widened to
  // 16-bit lanes (b & 0xf) | (b >> 4) << 8, whose little-endian bytes are the two codes in order.
  const std::uint8_t* Unpack4(const std::uint8_t* HWY_RESTRICT row) {
    std::uint8_t* HWY_RESTRICT c = codes_.data();
    const std::int64_t bytes = dim_ / 2;
    std::int64_t j = 0;
#if HWY_TARGET != HWY_SCALAR
    const D d;
    const hn::Rebind<std::uint8_t, D> d8;
    const hn::Rebind<std::uint16_t, D> d16;
    const hn::Repartition<std::uint8_t, decltype(d16)> d8x2;
    const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
    const auto low = hn::Set(d16, 0xf);
    for (; j + lanes <= bytes; j += lanes) {
      const auto b = hn::PromoteTo(d16, hn::LoadU(d8, row + j));
      const auto pair = hn::Or(hn::And(b, low), hn::ShiftLeft<8>(hn::ShiftRight<4>(b)));
      hn::StoreU(hn::BitCast(d8x2, pair), d8x2, c + 2 * j);
    }
#endif
    for (; j < bytes; ++j) {
      c[2 * j] = row[j] & 0xf;
      c[2 * j + 1] = row[j] >> 4;
    }
    if (dim_ % 2) c[dim_ - 1] = row[bytes] & 0xf;
    return c;
  }

  const std::uint8_t* table_;
  std::int64_t dim_;
  std::int64_t row_bytes_;
  std::vector<std::uint8_t> codes_;
};

template <int Bits, typename Index>
void QuantGatherTyped(const fast::QuantGatherArgs& a) {
  const auto* ids = static_cast<const Index*>(a.ids);
  parallel_ranges(a.n, a.n * a.dim, [&](std::int64_t begin, std::int64_t end, int, int) {
    QuantRows<Bits> rows(a.table, a.dim);
    for (std::int64_t k = begin; k < end; ++k) {
      if (ids && k + kPrefetchAhead < end) {
        PrefetchBytes(rows.Row(static_cast<std::int64_t>(ids[k + kPrefetchAhead])),
                      rows.RowBytes());
      }
      const std::int64_t r = ids ? static_cast<std::int64_t>(ids[k]) : k;
      rows.template Combine<kStore>(r, 0.0f, true, a.out + k * a.dim);
    }
  });
}

template <int Bits, typename Index, QuantCombine kMode>
void QuantBagTyped(const fast::QuantBagArgs& a) {
  const auto* ids = static_cast<const Index*>(a.ids);
  const std::int64_t n = a.bounds[a.num_bags];
  parallel_ranges(
      a.num_bags, (n + a.num_bags) * a.dim, [&](std::int64_t begin, std::int64_t end, int, int) {
        QuantRows<Bits> rows(a.table, a.dim);
        const std::int64_t last = a.bounds[end];
        for (std::int64_t b = begin; b < end; ++b) {
          float* o = a.out + b * a.dim;
          std::fill(o, o + a.dim, 0.0f);
          bool first = true;
          for (std::int64_t i = a.bounds[b]; i < a.bounds[b + 1]; ++i) {
            if (i + kPrefetchAhead < last) {
              PrefetchBytes(rows.Row(static_cast<std::int64_t>(ids[i + kPrefetchAhead])),
                            rows.RowBytes());
            }
            if (ids[i] == a.padding_idx) continue;
            const float w = a.psw ? a.psw[i] : 0.0f;
            rows.template Combine<kMode>(static_cast<std::int64_t>(ids[i]), w, first, o);
            first = false;
          }
        }
      });
}

template <int Bits, typename Index>
void QuantBagMode(const fast::QuantBagArgs& a) {
  if (a.max) {
    QuantBagTyped<Bits, Index, kMax>(a);
  } else if (!a.psw) {
    QuantBagTyped<Bits, Index, kAdd>(a);
  } else if (a.padding_idx < 0) {  // the twin's (and ATen's) fused path
    QuantBagTyped<Bits, Index, kFusedWeight>(a);
  } else {
    QuantBagTyped<Bits, Index, kUnfusedWeight>(a);
  }
}

void QuantGather(const fast::QuantGatherArgs& a) {
  if (a.n == 0 || a.dim == 0) return;
  if (a.bits == 4) {
    a.ids64 ? QuantGatherTyped<4, std::int64_t>(a) : QuantGatherTyped<4, std::int32_t>(a);
  } else {
    a.ids64 ? QuantGatherTyped<8, std::int64_t>(a) : QuantGatherTyped<8, std::int32_t>(a);
  }
}

void QuantBag(const fast::QuantBagArgs& a) {
  if (a.num_bags == 0 || a.dim == 0) return;
  if (a.bits == 4) {
    a.ids64 ? QuantBagMode<4, std::int64_t>(a) : QuantBagMode<4, std::int32_t>(a);
  } else {
    a.ids64 ? QuantBagMode<8, std::int64_t>(a) : QuantBagMode<8, std::int32_t>(a);
  }
}

}  // namespace emb::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace emb::detail {

HWY_EXPORT(QuantGather);
HWY_EXPORT(QuantBag);

void fast::quant_gather_any(const QuantGatherArgs& a) {
  EMB_DISPATCH(QuantGather)(a);
}

void fast::quant_bag_any(const QuantBagArgs& a) {
  EMB_DISPATCH(QuantBag)(a);
}

}  // namespace emb::detail
#endif  // HWY_ONCE
