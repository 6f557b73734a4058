// Fast dense backward: grad_weight[ids[i]] += alpha_i * grad[src_row(i)] over the positions in
// input order (Embedding and EmbeddingBag sum/mean), and mode max's grad_weight[k][d] +=
// grad[b][d]. Threads own ranges of gradient rows: each thread scans every position and applies
// those that land in its rows, so each row sees its additions in input order whatever the thread
// count. float32/float64 rows are vectors (one fma or add per element, as the twin); float16 and
// bfloat16 keep the twin's scalar roundings. Twins: ref::embedding_dense_backward,
// ref::bag_dense_backward_sum, ref::bag_dense_backward_max.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/scatter_backward.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/dispatch.h"
#include "kernels/fast.h"
#include "kernels/parallel.h"
#include "kernels/simd-inl.h"
#include "kernels/visit.h"

HWY_BEFORE_NAMESPACE();
namespace emb::detail::HWY_NAMESPACE {

// out[d] = fma(alpha, g[d], out[d]) for d < dim (alpha == 1: out[d] + g[d], the same bits).
template <typename T>
HWY_INLINE void AxpyRow(T alpha, const T* g, T* out, std::int64_t dim) {
  const hn::ScalableTag<T> d;
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
  std::int64_t c = 0;
  if (alpha == T(1)) {
    for (; c + lanes <= dim; c += lanes) {
      hn::StoreU(hn::Add(hn::LoadU(d, out + c), hn::LoadU(d, g + c)), d, out + c);
    }
  } else {
    const auto va = hn::Set(d, alpha);
    for (; c + lanes <= dim; c += lanes) {
      hn::StoreU(FusedMulAdd(d, va, hn::LoadU(d, g + c), hn::LoadU(d, out + c)), d, out + c);
    }
  }
  for (; c < dim; ++c) out[c] = std::fma(alpha, g[c], out[c]);
}

// The 16-bit twin: bfloat16 with fused_prefix fuses in float over whole 32-element chunks, the
// rest rounds alpha * g to T and then the sum.
template <typename T>
HWY_INLINE void AxpyRow16(float alpha, const T* g, T* out, std::int64_t dim, bool fused_prefix) {
  constexpr std::int64_t kFusedChunk = 32;
  const std::int64_t fused_end =
      (fused_prefix && std::is_same_v<T, BFloat16>) ? dim - dim % kFusedChunk : 0;
  std::int64_t c = 0;
  for (; c < fused_end; ++c) out[c] = T(std::fma(alpha, float(g[c]), float(out[c])));
  for (; c < dim; ++c) out[c] = T(float(out[c]) + float(T(alpha * float(g[c]))));
}

template <typename T, typename Index>
void ScatterTyped(const fast::ScatterArgs& a) {
  const auto* grad = static_cast<const T*>(a.grad);
  const auto* ids = static_cast<const Index*>(a.ids);
  const auto* psw = static_cast<const T*>(a.psw);
  T* gw = static_cast<T*>(a.grad_weight);
  const std::int64_t dim = a.dim;
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * sizeof(T);
  parallel_ranges(a.num_weights, a.n * dim, [&](std::int64_t lo, std::int64_t hi, int, int nt) {
    // Locals, not the captures: the row stores (vector stores may alias anything) would make the
    // compiler reload those every id.
    const T* const grad_rows = grad;
    const Index* const id = ids;
    const T* const weights = psw;
    T* const out = gw;
    const std::int64_t width = dim;
    const std::size_t bytes = row_bytes;
    const std::int64_t n = a.n;
    const std::int64_t pad = a.padding_idx;
    const std::int64_t* const offset2bag = a.offset2bag;
    const std::int64_t* const counts = a.counts;
    const std::int64_t* const bag_size = a.bag_size;
    const bool bf16_fused_prefix = a.bf16_fused_prefix;
    // About kPrefetchAhead of this thread's own rows ahead: it applies 1 id in nt.
    const std::int64_t ahead = kPrefetchAhead * nt;
    for (std::int64_t i = 0; i < n; ++i) {
      if (i + ahead < n) {
        const std::int64_t next = id[i + ahead];
        if (next >= lo && next < hi) PrefetchBytes(out + next * width, bytes);
      }
      const std::int64_t k = id[i];
      if (k < lo || k >= hi || k == pad) continue;
      const std::int64_t src = offset2bag ? offset2bag[i] : i;
      double s = weights ? static_cast<double>(Arith<T>(weights[i])) : 1.0;
      if (counts) s /= static_cast<double>(counts[k]);
      if (bag_size && bag_size[src] != 0) s /= static_cast<double>(bag_size[src]);
      if constexpr (kIs16<T>) {
        AxpyRow16(static_cast<float>(T(static_cast<float>(s))), grad_rows + src * width,
                  out + k * width, width, bf16_fused_prefix);
      } else {
        AxpyRow(static_cast<T>(s), grad_rows + src * width, out + k * width, width);
      }
    }
  });
}

void ScatterAddRows(const fast::ScatterArgs& a) {
  if (a.n == 0 || a.dim == 0) return;
  visit_float_and_index(a.dtype, a.ids64,
                        [&](auto t, auto i) { ScatterTyped<decltype(t), decltype(i)>(a); });
}

void ScatterAddMax(const fast::ScatterMaxArgs& a) {
  if (a.num_bags == 0 || a.dim == 0) return;
  visit_floating(a.dtype, [&](auto t) {
    using T = decltype(t);
    using A = Arith<T>;
    const auto* grad = static_cast<const T*>(a.grad);
    T* gw = static_cast<T*>(a.grad_weight);
    const std::int64_t dim = a.dim;
    parallel_ranges(a.num_weights, a.num_bags * dim,
                    [&](std::int64_t lo, std::int64_t hi, int, int) {
                      for (std::int64_t b = 0; b < a.num_bags; ++b) {
                        if (a.bag_size[b] == 0) continue;
                        const std::int64_t* mi = a.max_indices + b * dim;
                        const T* g = grad + b * dim;
                        for (std::int64_t c = 0; c < dim; ++c) {
                          const std::int64_t k = mi[c];
                          if (k < lo || k >= hi) continue;
                          T& out = gw[k * dim + c];
                          out = T(A(out) + A(g[c]));
                        }
                      }
                    });
  });
}

}  // namespace emb::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace emb::detail {

HWY_EXPORT(ScatterAddRows);
HWY_EXPORT(ScatterAddMax);

void fast::scatter_add_rows_any(const ScatterArgs& a) {
  EMB_DISPATCH(ScatterAddRows)(a);
}

void fast::scatter_add_max_any(const ScatterMaxArgs& a) {
  EMB_DISPATCH(ScatterAddMax)(a);
}

}  // namespace emb::detail
#endif  // HWY_ONCE
