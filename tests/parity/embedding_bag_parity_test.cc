// EmbeddingBag parity with libtorch 1.13: forward (output and auxiliaries), dense and sparse
// weight gradients and per_sample_weights gradients on identical inputs, over randomized
// configurations and PyTorch's own test cases (spec §2, §4.1, §6, §7). The invalid inputs of
// spec §2.5 are never given to libtorch: they are covered by embedding_bag_errors_test.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "emb/emb.h"
#include "index_check.h"
#include "kernels/ref/embedding_bag_ref.h"
#include "parity/torch_bridge.h"

namespace emb {
namespace {

using testing::bitwise_equal;
using testing::close_ulps;
using testing::from_torch;
using testing::to_torch;

// Counts shown at the end of the run (and recorded as test properties).
struct Counts {
  std::int64_t configs = 0, outputs_bitwise = 0, aux = 0;
  std::int64_t psw_outputs_bitwise = 0, psw_outputs_padding = 0, psw_outputs_float64 = 0;
  std::int64_t dense_grads = 0, dense_aten_order_bitwise = 0, dense_input_order_bitwise = 0;
  std::int64_t dense_many_duplicates = 0, sparse_grads = 0, psw_grads_bitwise = 0;
  std::int64_t sgf_mixed_vs_embedding = 0, sparse_sgf_torch_raised = 0, renorms = 0;
  std::int64_t bf16_configs = 0, extreme_configs = 0;
  // per weight dtype (float32, float64, float16, bfloat16): per_sample_weights outputs and
  // gradients compared (bitwise; bfloat16 within the tolerance).
  std::map<std::string, std::int64_t> psw_outputs, psw_grads;
};
Counts counts;

class PrintCounts : public ::testing::Environment {
 public:
  void TearDown() override {
    std::cout << "embedding_bag parity: " << counts.configs << " randomized configurations ("
              << counts.extreme_configs << " with subnormals, inf, NaN or the largest values), "
              << counts.outputs_bitwise << " outputs bitwise (" << counts.psw_outputs_bitwise
              << " with per_sample_weights: " << counts.psw_outputs_padding << " with padding_idx, "
              << counts.psw_outputs_float64 << " float64), " << counts.aux << " auxiliary sets, "
              << counts.renorms << " bitwise renorms; " << counts.dense_grads
              << " dense weight grads bitwise in ATen's order (" << counts.dense_many_duplicates
              << " with more than 16 duplicates of an id; " << counts.dense_input_order_bitwise
              << " also bitwise in input order, the rest within the rounding bound), "
              << counts.sparse_grads << " sparse weight grads bitwise, " << counts.psw_grads_bitwise
              << " per_sample_weights grads bitwise; " << counts.bf16_configs
              << " bfloat16 configurations within the stated tolerance of float32 torch; "
              << counts.sgf_mixed_vs_embedding
              << " dense sgf grads with mixed counts (torch's bag path is wrong there, "
                 "pytorch#190063) and "
              << counts.sparse_sgf_torch_raised
              << " sparse+sgf grads (torch raises) checked against torch's Embedding sgf\n";
    std::cout << "embedding_bag parity: per_sample_weights outputs / gradients by dtype:";
    for (const auto& [dtype, n] : counts.psw_outputs)
      std::cout << " " << dtype << " " << n << " / " << counts.psw_grads[dtype];
    std::cout << " (bfloat16 within the tolerance, the others bitwise)\n";
    ::testing::Test::RecordProperty("outputs_bitwise", counts.outputs_bitwise);
    ::testing::Test::RecordProperty("dense_grads_aten_order_bitwise", counts.dense_grads);
    ::testing::Test::RecordProperty("psw_grads_bitwise", counts.psw_grads_bitwise);
  }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new PrintCounts);

double eps_of(DType d) {
  return d == DType::kFloat64   ? 0x1p-52
         : d == DType::kFloat32 ? 0x1p-23
         : d == DType::kFloat16 ? 0x1p-10
                                : 0x1p-7;
}

double largest_of(DType d) {
  return d == DType::kFloat64   ? std::numeric_limits<double>::max()
         : d == DType::kFloat32 ? std::numeric_limits<float>::max()
         : d == DType::kFloat16 ? 65504.0
                                : 0x1.FEp127;
}

// |ours - torch| <= factor * eps * bound + tiny, element-wise, where bound is the sum of the
// magnitudes of the terms (the error bound of summing them in another order). Elements whose
// bound is not finite or could overflow are skipped: with inf, NaN or overflowing partial sums
// the order alone decides the result.
::testing::AssertionResult within_bound(const Tensor& ours, const torch::Tensor& theirs_t,
                                        const Tensor& bound, double factor) {
  const Tensor theirs = from_torch(theirs_t);
  if (ours.shape() != theirs.shape() || ours.dtype() != theirs.dtype()) {
    return ::testing::AssertionFailure()
           << "shape/dtype differ: ours " << shape_to_string(ours.shape()) << ", torch "
           << shape_to_string(theirs.shape());
  }
  const double eps = eps_of(ours.dtype());
  for (std::int64_t i = 0; i < ours.numel(); ++i) {
    const double a = ours.get_double(i), b = theirs.get_double(i);
    if (a == b || (std::isnan(a) && std::isnan(b))) continue;
    if (!(std::abs(bound.get_double(i)) <= largest_of(ours.dtype()) / 2)) continue;
    const double tol = factor * eps * std::abs(bound.get_double(i)) + 1e-30;
    if (!(std::abs(a - b) <= tol)) {
      return ::testing::AssertionFailure() << "element " << i << ": ours " << a << ", torch " << b
                                           << " (tolerance " << tol << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

Tensor abs_of(const Tensor& t) {
  if (!t.defined()) return t;
  Tensor out = t.clone();
  for (std::int64_t i = 0; i < out.numel(); ++i) out.set_double(i, std::abs(out.get_double(i)));
  return out;
}

torch::Tensor as_long(const torch::Tensor& t) {
  return t.to(torch::kLong).contiguous();
}

int64_t mode_int(EmbeddingBagMode m) {
  return m == EmbeddingBagMode::kSum ? 0 : m == EmbeddingBagMode::kMean ? 1 : 2;
}

Tensor ids_tensor(const std::vector<std::int64_t>& v, DType dt, const Shape& shape) {
  Tensor t = Tensor::empty(shape, dt);
  for (std::size_t i = 0; i < v.size(); ++i)
    t.set_double(static_cast<std::int64_t>(i), static_cast<double>(v[i]));
  return t;
}

// ---------------------------------------------------------------------------------------------
// Randomized configurations

struct Config {
  std::int64_t num = 1, dim = 1;
  DType wdt = DType::kFloat32, idt = DType::kInt64, odt = DType::kInt64;
  EmbeddingBagMode mode = EmbeddingBagMode::kSum;
  bool two_d = false;
  std::int64_t rows = 0, cols = 0;
  std::vector<std::int64_t> ids, offsets;  // offsets as given to emb (1-D only)
  std::optional<std::int64_t> pad;         // as given (may be negative)
  bool psw = false, ilo = false, sgf = false, sparse = false, forward_only = false;
  std::optional<double> max_norm;
  double norm_type = 2.0;
  std::uint64_t seed = 0;

  std::int64_t pad_normalized() const { return pad ? (*pad < 0 ? *pad + num : *pad) : -1; }
  std::string describe() const {
    std::string s = "seed=" + std::to_string(seed) + " num=" + std::to_string(num) +
                    " dim=" + std::to_string(dim) + " w=" + std::string(dtype_name(wdt)) +
                    " ids=" + std::string(dtype_name(idt)) +
                    " offsets=" + std::string(dtype_name(odt)) + " mode=" + mode_name(mode) +
                    " n=" + std::to_string(ids.size());
    if (two_d) s += " 2-D " + std::to_string(rows) + "x" + std::to_string(cols);
    if (pad) s += " pad=" + std::to_string(*pad);
    if (psw) s += " psw";
    if (ilo) s += " include_last_offset";
    if (sgf) s += " sgf";
    if (sparse) s += " sparse";
    if (forward_only) s += " forward_only";
    if (max_norm) s += " max_norm=" + std::to_string(*max_norm) + " p=" + std::to_string(norm_type);
    return s;
  }
};

template <typename T>
T pick(std::mt19937_64& rng, std::initializer_list<T> v) {
  return v.begin()[std::uniform_int_distribution<std::size_t>(0, v.size() - 1)(rng)];
}
bool chance(std::mt19937_64& rng, double p) {
  return std::uniform_real_distribution<double>(0, 1)(rng) < p;
}
std::int64_t uniform(std::mt19937_64& rng, std::int64_t lo, std::int64_t hi) {
  return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
}

std::int64_t bag_length(std::mt19937_64& rng) {
  if (chance(rng, 0.2)) return 0;
  if (chance(rng, 0.55)) return uniform(rng, 1, 5);
  if (chance(rng, 0.6)) return uniform(rng, 6, 20);
  return uniform(rng, 21, 50);
}

Config random_config(std::mt19937_64& rng) {
  Config c;
  c.num = pick<std::int64_t>(rng, {1, 2, 3, 5, 10, 37, 100});
  c.dim = pick<std::int64_t>(rng, {1, 3, 7, 8, 15, 16, 17, 64});
  c.wdt = pick(
      rng, {DType::kFloat32, DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16});
  c.idt = pick(rng, {DType::kInt32, DType::kInt64});
  c.odt = pick(rng, {DType::kInt32, DType::kInt64});
  c.mode = pick(rng, {EmbeddingBagMode::kSum, EmbeddingBagMode::kMean, EmbeddingBagMode::kMax});
  if (chance(rng, 0.4)) {
    const std::int64_t p = uniform(rng, 0, c.num - 1);
    c.pad = chance(rng, 0.3) ? p - c.num : p;
  }
  const std::int64_t pool =
      chance(rng, 0.3) ? std::min<std::int64_t>(c.num, 3) : c.num;  // duplicates
  auto next_id = [&] {
    if (c.pad && chance(rng, 0.2)) return c.pad_normalized();
    return uniform(rng, 0, pool - 1);
  };
  c.two_d = chance(rng, 0.2);
  if (c.two_d) {
    c.rows = uniform(rng, 0, 6);
    c.cols = uniform(rng, 0, 12);
    for (std::int64_t i = 0; i < c.rows * c.cols; ++i) c.ids.push_back(next_id());
  } else {
    const std::int64_t bags = uniform(rng, 0, 8);
    for (std::int64_t b = 0; b < bags; ++b) {
      c.offsets.push_back(static_cast<std::int64_t>(c.ids.size()));
      for (std::int64_t i = bag_length(rng); i > 0; --i) c.ids.push_back(next_id());
    }
    if (bags == 0 && chance(rng, 0.5)) c.offsets.push_back(0);  // empty input, one empty bag
    c.ilo = chance(rng, 0.3);
    if (c.ilo) c.offsets.push_back(static_cast<std::int64_t>(c.ids.size()));
  }
  if (c.two_d && chance(rng, 0.3)) c.ilo = true;  // ignored for 2-D input (2.x)
  c.psw = c.mode == EmbeddingBagMode::kSum && chance(rng, 0.4);
  if (c.mode != EmbeddingBagMode::kMax) {
    c.sgf = chance(rng, 0.25);
    c.sparse = chance(rng, 0.3);
  }
  if (chance(rng, 0.15)) {
    c.max_norm = pick(rng, {0.5, 1.0, 2.0, 5.0});
    c.norm_type = pick(rng, {2.0, 2.0, 1.0, 3.5});
  }
  c.forward_only = chance(rng, 0.2);
  return c;
}

// Normal values (with ties: multiples of 1/2); with extremes, 10% of them are subnormals, +-inf,
// NaN, the largest finite values or wide exponents.
Tensor random_values(std::mt19937_64& rng, const Shape& shape, DType dt, bool ties,
                     bool extremes = false) {
  Tensor t = Tensor::empty(shape, dt);
  std::normal_distribution<double> normal(0, 1);
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    const double v = normal(rng);
    t.set_double(i, ties ? std::round(v * 2) / 2 : v);
  }
  if (extremes) testing::sprinkle_extremes(rng, t, 0.1);
  return t;
}

// The largest number of positions that share one id (bounds the terms of a gradient row).
std::int64_t max_duplicates(const std::vector<std::int64_t>& ids) {
  std::map<std::int64_t, std::int64_t> c;
  std::int64_t m = 0;
  for (auto k : ids) m = std::max(m, ++c[k]);
  return m;
}

// ATen's dense sum/mean backward sorts the indices (an unstable sort) and adds each id's terms in
// that order. Fed the same order (the permutation of torch's sort of the same indices), emb's
// reference kernel must give ATen's gradient bit for bit.
Tensor dense_backward_in_aten_order(const Tensor& grad, const Config& c,
                                    const torch::Tensor& sorted_input, const Tensor& offset2bag,
                                    const Tensor& psw, const Tensor& bag_size) {
  const torch::Tensor perm = std::get<1>(sorted_input.sort()).to(torch::kLong).contiguous();
  const std::int64_t n = perm.numel();
  std::vector<std::int64_t> ids(n), o2b(n), counts;
  for (std::int64_t j = 0; j < n; ++j) {
    const std::int64_t i = perm.data_ptr<int64_t>()[j];
    ids[j] = c.ids[i];
    o2b[j] = offset2bag.data<std::int64_t>()[i];
  }
  if (c.sgf) {
    counts.assign(c.num, 0);
    for (auto k : c.ids) ++counts[k];
  }
  Tensor gw = Tensor::zeros({c.num, c.dim}, grad.dtype());
  detail::visit_floating(grad.dtype(), [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> w(psw.defined() ? n : 0);
    for (std::size_t j = 0; j < w.size(); ++j) w[j] = psw.data<T>()[perm.data_ptr<int64_t>()[j]];
    detail::ref::bag_dense_backward_sum<T, std::int64_t>(
        grad.data<T>(), c.dim, ids.data(), o2b.data(), n, c.pad_normalized(),
        psw.defined() ? w.data() : nullptr, c.sgf ? counts.data() : nullptr,
        c.mode == EmbeddingBagMode::kMean ? bag_size.data<std::int64_t>() : nullptr, gw.data<T>());
  });
  return gw;
}

void run_config(const Config& c, std::mt19937_64& rng) {
  SCOPED_TRACE(c.describe());
  ++counts.configs;
  const std::int64_t n = static_cast<std::int64_t>(c.ids.size());
  const std::int64_t pad = c.pad_normalized();
  // bfloat16 has no 1.13 oracle (spec §6): torch runs the same values in float32, and emb's
  // bfloat16 results are compared with torch's rounded to bfloat16, within a stated tolerance.
  const bool bf16 = c.wdt == DType::kBFloat16;
  const bool extremes = chance(rng, 0.2);
  counts.extreme_configs += extremes ? 1 : 0;
  counts.bf16_configs += bf16 ? 1 : 0;
  const bool ties = c.mode == EmbeddingBagMode::kMax && chance(rng, 0.3);
  Tensor weight = random_values(rng, {c.num, c.dim}, c.wdt, ties, extremes);
  if (c.mode == EmbeddingBagMode::kMax && chance(rng, 0.1)) weight.set_double(0, std::nan(""));
  const Tensor input =
      c.two_d ? ids_tensor(c.ids, c.idt, {c.rows, c.cols}) : ids_tensor(c.ids, c.idt, {n});
  Tensor offsets;
  std::vector<std::int64_t> torch_offsets = c.offsets;  // torch: 1-D with offsets, always
  DType torch_odt = c.odt;
  if (c.two_d) {
    torch_offsets.clear();
    for (std::int64_t b = 0; b < c.rows; ++b) torch_offsets.push_back(b * c.cols);
    torch_odt = DType::kInt64;  // as libtorch's F::embedding_bag builds them
  } else {
    offsets = ids_tensor(c.offsets, c.odt, {static_cast<std::int64_t>(c.offsets.size())});
  }
  const bool torch_ilo = c.ilo && !c.two_d;
  Tensor psw = c.psw ? random_values(rng, input.shape(), c.wdt, false, extremes) : Tensor();

  EmbeddingBagFuncOptions o;
  o.mode(c.mode)
      .include_last_offset(c.ilo)
      .padding_idx(c.pad)
      .max_norm(c.max_norm)
      .norm_type(c.norm_type);
  o.scale_grad_by_freq(c.sgf).sparse(c.sparse);

  // torch (bfloat16: float32 copies of the same values; the renorm itself runs in bfloat16)
  torch::Tensor tw = to_torch(weight);
  torch::Tensor ti = to_torch(input).reshape({n});
  torch::Tensor to = to_torch(
      ids_tensor(torch_offsets, torch_odt, {static_cast<std::int64_t>(torch_offsets.size())}));
  c10::optional<torch::Tensor> tpsw;
  if (c.psw) tpsw = to_torch(psw).reshape({n}).to(bf16 ? torch::kFloat : to_torch(c.wdt));
  if (c.max_norm) {
    torch::NoGradGuard guard;
    at::embedding_renorm_(tw, ti, *c.max_norm, c.norm_type);
  }
  const torch::Tensor tw_pool = bf16 ? tw.to(torch::kFloat) : tw;
  auto tr = c.forward_only
                ? at::_embedding_bag_forward_only(tw_pool, ti, to, c.sgf, mode_int(c.mode),
                                                  c.sparse, tpsw, torch_ilo, pad)
                : at::_embedding_bag(tw_pool, ti, to, c.sgf, mode_int(c.mode), c.sparse, tpsw,
                                     torch_ilo, pad);
  // torch's result in emb's dtype (bfloat16: float32 rounded once).
  auto in_wdt = [&](const torch::Tensor& t) { return bf16 ? t.to(torch::kBFloat16) : t; };
  const torch::Tensor t_out = in_wdt(std::get<0>(tr));

  // emb
  Tensor ew = weight.clone();
  EmbeddingBagResult r = embedding_bag_forward(input, ew, offsets, o, psw);
  Tensor pooled_w = ew;  // the weight the pooling used
  if (c.max_norm) {
    ++counts.renorms;
    ASSERT_TRUE(bitwise_equal(ew, tw)) << "renormed weight";
  }
  if (bf16) {
    // Sum: the same float32 arithmetic, rounded once; mean divides the rounded sum (as ATen
    // divides its output), max picks the same element: within 2 eps of the magnitudes.
    const Tensor bound = embedding_bag(input, abs_of(pooled_w), offsets,
                                       EmbeddingBagFuncOptions(o).max_norm(std::nullopt),
                                       psw.defined() ? abs_of(psw) : psw);
    ASSERT_TRUE(within_bound(r.output, t_out, bound, 2.0)) << "bfloat16 output";
    if (c.psw) ++counts.psw_outputs[std::string(dtype_name(c.wdt))];
  } else {
    ASSERT_TRUE(bitwise_equal(r.output, t_out)) << "output";
    ++counts.outputs_bitwise;
    if (c.psw) {
      ++counts.psw_outputs[std::string(dtype_name(c.wdt))];
      ++counts.psw_outputs_bitwise;
      counts.psw_outputs_padding += pad >= 0 ? 1 : 0;
      counts.psw_outputs_float64 += c.wdt == DType::kFloat64 ? 1 : 0;
    }
  }
  // Auxiliaries.
  ++counts.aux;
  const torch::Tensor t_o2b = std::get<1>(tr), t_bs = std::get<2>(tr), t_mi = std::get<3>(tr);
  if (t_o2b.numel() > 0) {
    EXPECT_TRUE(bitwise_equal(r.offset2bag, as_long(t_o2b))) << "offset2bag";
  }
  if (c.mode == EmbeddingBagMode::kSum) {
    EXPECT_EQ(t_bs.abs().sum().item<int64_t>(), 0) << "1.13 zeroes bag_size in mode sum";
  } else {
    EXPECT_TRUE(bitwise_equal(r.bag_size, as_long(t_bs))) << "bag_size";
  }
  if (c.mode == EmbeddingBagMode::kMax) {
    EXPECT_TRUE(bitwise_equal(r.max_indices, as_long(t_mi))) << "max_indices";
  }
  if (c.forward_only || ::testing::Test::HasFailure()) return;

  // Backward: torch's backward wants indices and offsets of one dtype.
  Tensor grad = random_values(rng, {r.output.size(0), c.dim}, c.wdt, false, extremes);
  torch::Tensor tg = to_torch(grad);
  if (bf16) tg = tg.to(torch::kFloat);
  torch::Tensor bi = ti, bo = to;
  if (ti.scalar_type() != to.scalar_type()) {
    bi = ti.to(torch::kLong);
    bo = to.to(torch::kLong);
  }
  const torch::Tensor& t_o2b_b = t_o2b.numel() > 0 ? t_o2b.to(bi.scalar_type()) : t_o2b;
  EmbeddingBagFuncOptions ob = EmbeddingBagFuncOptions(o).max_norm(std::nullopt);
  const double order_factor = 2.0 * static_cast<double>(max_duplicates(c.ids) + 2);
  auto grad_bound = [&] {
    return embedding_bag_dense_backward(abs_of(grad), input, offsets, r.max_indices, c.num, ob,
                                        psw.defined() ? abs_of(psw) : psw);
  };
  // An independent sgf reference: each position's share of its bag's gradient (times psw,
  // divided by the bag size in mode mean), through torch's Embedding sgf backward, in float64.
  auto sgf_reference = [&] {
    const torch::Tensor o2b = to_torch(r.offset2bag);
    torch::Tensor g = tg.to(torch::kDouble).index_select(0, o2b);
    if (c.psw) g = g * tpsw->to(torch::kDouble).unsqueeze(1);
    if (c.mode == EmbeddingBagMode::kMean) {
      g = g /
          to_torch(r.bag_size).to(torch::kDouble).clamp_min(1).index_select(0, o2b).unsqueeze(1);
    }
    return at::embedding_dense_backward(g, ti.to(torch::kLong), c.num, pad, true)
        .to(to_torch(c.wdt));
  };
  if (c.sparse && c.sgf) {
    ++counts.sparse_sgf_torch_raised;
    EXPECT_THROW(at::_embedding_bag_backward(tg, bi, bo, t_o2b_b, t_bs, t_mi, c.num, true,
                                             mode_int(c.mode), true, tpsw, pad),
                 c10::Error);
    SparseGrad s = embedding_bag_sparse_backward(grad, input, offsets, c.num, ob, psw);
    EXPECT_TRUE(within_bound(s.to_dense(), sgf_reference(), grad_bound(), order_factor))
        << "sparse sgf vs torch's Embedding sgf";
  } else if (c.sgf && !c.sparse && [&] {
               std::map<std::int64_t, std::int64_t> cnt;
               for (auto k : c.ids) ++cnt[k];
               for (auto& [k, v] : cnt)
                 if (v != cnt.begin()->second) return true;
               return false;
             }()) {
    // torch's bag backward divides by another id's count here (pytorch#190063): check emb
    // against torch's (correct) Embedding sgf instead.
    ++counts.sgf_mixed_vs_embedding;
    Tensor d = embedding_bag_dense_backward(grad, input, offsets, {}, c.num, ob, psw);
    EXPECT_TRUE(within_bound(d, sgf_reference(), grad_bound(), order_factor))
        << "dense sgf vs torch's Embedding sgf";
  } else {
    torch::Tensor tgw = at::_embedding_bag_backward(tg, bi, bo, t_o2b_b, t_bs, t_mi, c.num, c.sgf,
                                                    mode_int(c.mode), c.sparse, tpsw, pad);
    auto eg = embedding_bag_backward(grad, input, offsets, r.max_indices, c.num, ob, psw);
    if (c.sparse) {
      const SparseGrad& s = std::get<SparseGrad>(eg);
      EXPECT_TRUE(bitwise_equal(s.indices(), tgw._indices().reshape({-1}).contiguous()))
          << "sparse ids";
      if (bf16) {
        Tensor bound = embedding_bag_sparse_backward(abs_of(grad), input, offsets, c.num, ob,
                                                     psw.defined() ? abs_of(psw) : psw)
                           .values();
        EXPECT_TRUE(within_bound(s.values(), in_wdt(tgw._values()), bound, 4.0))
            << "bfloat16 sparse values";
      } else {
        EXPECT_TRUE(bitwise_equal(s.values(), tgw._values())) << "sparse values";
        ++counts.sparse_grads;
      }
    } else {
      const Tensor& d = std::get<Tensor>(eg);
      if (bf16) {
        EXPECT_TRUE(within_bound(d, in_wdt(tgw), grad_bound(), order_factor))
            << "bfloat16 dense grad";
      } else if (c.mode == EmbeddingBagMode::kMax) {
        EXPECT_TRUE(bitwise_equal(d, tgw)) << "max grad";
        ++counts.dense_grads;
        ++counts.dense_input_order_bitwise;
      } else {
        // Bitwise in ATen's order; in input order (what emb computes) within the bound of
        // summing the same terms in another order.
        EXPECT_TRUE(bitwise_equal(
            dense_backward_in_aten_order(grad, c, bi, r.offset2bag, psw, r.bag_size), tgw))
            << "dense grad in ATen's order";
        ++counts.dense_grads;
        counts.dense_many_duplicates += max_duplicates(c.ids) > 16 ? 1 : 0;
        if (bitwise_equal(d, tgw)) ++counts.dense_input_order_bitwise;
        EXPECT_TRUE(within_bound(d, tgw, grad_bound(), order_factor)) << "dense grad";
      }
    }
  }
  if (c.psw) {
    ++counts.psw_grads[std::string(dtype_name(c.wdt))];
    torch::Tensor tpg =
        at::_embedding_bag_per_sample_weights_backward(tg, tw_pool, bi, bo, t_o2b_b, 0, pad);
    Tensor pg = embedding_bag_per_sample_weights_backward(grad, pooled_w, input, offsets, ob);
    if (bf16) {
      // float32 dot products rounded once: within 1 ulp (2 eps of the magnitudes).
      Tensor bound = embedding_bag_per_sample_weights_backward(abs_of(grad), abs_of(pooled_w),
                                                               input, offsets, ob);
      EXPECT_TRUE(within_bound(pg.reshape({n}), in_wdt(tpg), bound.reshape({n}), 2.0))
          << "bfloat16 psw grad";
    } else {
      EXPECT_TRUE(bitwise_equal(pg.reshape({n}), tpg)) << "psw grad";
      ++counts.psw_grads_bitwise;
    }
  }
}

// The per_sample_weights gradient is a BLAS dot product in ATen: the suite is defined against the
// reference BLAS, which adds the rounded products left to right.
TEST(EmbeddingBagParity, LibtorchUsesTheReferenceBlas) {
  EXPECT_TRUE(testing::uses_reference_blas());
}

TEST(EmbeddingBagParity, RandomizedConfigurations) {
  ASSERT_TRUE(testing::uses_reference_blas());
  for (std::uint64_t seed : {1u, 2u, 3u, 4u}) {
    std::mt19937_64 rng(seed);
    for (int i = 0; i < 300; ++i) {
      Config c = random_config(rng);
      c.seed = seed * 1000 + static_cast<std::uint64_t>(i);
      run_config(c, rng);
      if (HasFailure()) return;  // the first failing configuration is the useful one
    }
  }
  EXPECT_GE(counts.configs, 1000);
}

// per_sample_weights on every dtype and path, bitwise: ATen's fast path (float32/float16 without
// padding_idx) fuses the multiply-add, its slow path (float64, any padding_idx) does not; the
// gradient is the reference BLAS dot (float32, float64) or a float16 dot in half arithmetic.
// Dims around the vector widths, with and without extreme values. bfloat16 (no 1.13 oracle):
// against float32 torch rounded to bfloat16, within 1 ulp (2 eps of the magnitudes).
TEST(EmbeddingBagParity, PerSampleWeightsEveryDtypeAndPath) {
  ASSERT_TRUE(testing::uses_reference_blas());
  std::mt19937_64 rng(77);
  std::int64_t bitwise = 0, bf16 = 0;
  for (DType dt : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16}) {
    for (std::int64_t pad : {-1, 0, 3}) {
      for (std::int64_t dim : {1, 3, 7, 8, 15, 16, 17, 64, 129}) {
        for (bool extremes : {false, true}) {
          SCOPED_TRACE(std::string(dtype_name(dt)) + " pad=" + std::to_string(pad) +
                       " dim=" + std::to_string(dim) + (extremes ? " extremes" : ""));
          const std::int64_t num = 6, n = 40;
          const Tensor w = random_values(rng, {num, dim}, dt, false, extremes);
          std::vector<std::int64_t> ids(n);
          for (auto& k : ids) k = uniform(rng, 0, num - 1);
          const Tensor in = Tensor::from_vector<std::int64_t>(ids, {n});
          const Tensor off = Tensor::from_vector<std::int64_t>({0, 5, 5, 21, 39}, {5});
          const Tensor psw = random_values(rng, {n}, dt, false, extremes);
          auto o = EmbeddingBagFuncOptions().mode(EmbeddingBagMode::kSum);
          if (pad >= 0) o.padding_idx(pad);
          const Tensor out = embedding_bag(in, w, off, o, psw);
          const Tensor grad = random_values(rng, {5, dim}, dt, false, extremes);
          const Tensor dpsw = embedding_bag_per_sample_weights_backward(grad, w, in, off, o);
          const torch::ScalarType tt = dt == DType::kBFloat16 ? torch::kFloat : to_torch(dt);
          const torch::Tensor tw = to_torch(w).to(tt), tg = to_torch(grad).to(tt);
          auto t = at::_embedding_bag(tw, to_torch(in), to_torch(off), false, 0, false,
                                      to_torch(psw).to(tt), false, pad);
          const torch::Tensor tdpsw = at::_embedding_bag_per_sample_weights_backward(
              tg, tw, to_torch(in), to_torch(off), std::get<1>(t), 0, pad);
          if (dt == DType::kBFloat16) {
            EXPECT_TRUE(within_bound(out, std::get<0>(t).to(torch::kBFloat16),
                                     embedding_bag(in, abs_of(w), off, o, abs_of(psw)), 2.0));
            EXPECT_TRUE(within_bound(
                dpsw, tdpsw.to(torch::kBFloat16),
                embedding_bag_per_sample_weights_backward(abs_of(grad), abs_of(w), in, off, o),
                2.0));
            bf16 += 2;
          } else {
            EXPECT_TRUE(bitwise_equal(out, std::get<0>(t))) << "output";
            EXPECT_TRUE(bitwise_equal(dpsw, tdpsw)) << "per_sample_weights gradient";
            bitwise += 2;
          }
        }
      }
    }
  }
  std::printf(
      "embedding_bag parity: per_sample_weights sweep: %lld outputs and gradients bitwise "
      "(float32, float64, float16 x padding_idx none/0/3 x 9 dims x normal/extreme values), "
      "%lld bfloat16 within 1 ulp of float32 torch\n",
      static_cast<long long>(bitwise), static_cast<long long>(bf16));
  RecordProperty("psw_sweep_bitwise", static_cast<int>(bitwise));
}

// ---------------------------------------------------------------------------------------------
// PyTorch's own tests (spec §4.1, cases marked A)

Tensor weight_k() {  // row k = [2k + 1, 2k + 2]
  Tensor w = Tensor::empty({5, 2}, DType::kFloat32);
  for (int i = 0; i < 10; ++i) w.set_double(i, i + 1);
  return w;
}
Tensor longs(std::vector<std::int64_t> v) {
  return Tensor::from_vector<std::int64_t>(v, {static_cast<std::int64_t>(v.size())});
}
torch::Tensor tlongs(std::vector<std::int64_t> v) {
  return to_torch(longs(std::move(v)));
}

// 7, 15: from_pretrained keeps the weight; offsets arange gives the rows; mean of two rows.
TEST(EmbeddingBagUpstream, FromPretrained) {
  Tensor w = weight_k();
  EmbeddingBag m = EmbeddingBag::from_pretrained(
      w, EmbeddingBagFromPretrainedOptions().mode(EmbeddingBagMode::kSum));
  auto tm = torch::nn::EmbeddingBag::from_pretrained(
      to_torch(w), torch::nn::EmbeddingBagFromPretrainedOptions().mode(torch::kSum));
  EXPECT_TRUE(bitwise_equal(m.weight(), tm->weight));
  EXPECT_TRUE(bitwise_equal(m(longs({0, 1, 2, 3, 4}), longs({0, 1, 2, 3, 4})),
                            tm(tlongs({0, 1, 2, 3, 4}), tlongs({0, 1, 2, 3, 4}))));
  EXPECT_TRUE(m(longs({0, 1, 2, 3, 4}), longs({0, 1, 2, 3, 4})).equal(w));
  EmbeddingBag mean =
      EmbeddingBag::from_pretrained(Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3}));
  Tensor out = mean(Tensor::from_vector<std::int64_t>({1, 0}, {1, 2}));
  EXPECT_EQ(out.at<float>(0, 0), 2.5f);
  EXPECT_EQ(out.at<float>(0, 2), 4.5f);
}

// 9: from_pretrained with padding_idx leaves the weight (and its padding row) alone.
TEST(EmbeddingBagUpstream, FromPretrainedPaddingIdx) {
  Tensor w = weight_k();
  const Tensor before = w.clone();
  EmbeddingBag m =
      EmbeddingBag::from_pretrained(w, EmbeddingBagFromPretrainedOptions().padding_idx(2));
  auto tm = torch::nn::EmbeddingBag::from_pretrained(
      to_torch(w), torch::nn::EmbeddingBagFromPretrainedOptions().padding_idx(2));
  EXPECT_TRUE(m.weight().equal(before));
  EXPECT_TRUE(bitwise_equal(m.weight(), tm->weight));
}

// 13: module and functional agree (mean, padding_idx 2), and agree with torch.
TEST(EmbeddingBagUpstream, ModuleEqualsFunctional) {
  Tensor w = weight_k();
  EmbeddingBag m(EmbeddingBagOptions(5, 2).padding_idx(2)._weight(w));
  Tensor in = Tensor::from_vector<std::int64_t>({0, 2, 4, 2, 2, 1}, {2, 3});
  Tensor a = m(in);
  Tensor b = embedding_bag(in, w, {}, EmbeddingBagFuncOptions().padding_idx(2));
  EXPECT_TRUE(a.equal(b));
  namespace F = torch::nn::functional;
  EXPECT_TRUE(bitwise_equal(
      a, F::embedding_bag(to_torch(in), to_torch(w), F::EmbeddingBagFuncOptions().padding_idx(2))));
}

// 14: padding_idx range.
TEST(EmbeddingBagUpstream, PaddingIdxError) {
  for (std::int64_t p : {5, -6, 25}) {
    EXPECT_THROW(
        embedding_bag(longs({0}), weight_k(), longs({0}), EmbeddingBagFuncOptions().padding_idx(p)),
        IndexError);
    EXPECT_THROW(EmbeddingBag(EmbeddingBagOptions(5, 2).padding_idx(p)), IndexError);
    EXPECT_THROW(at::embedding_bag(to_torch(weight_k()), tlongs({0}), tlongs({0}), false, 1, false,
                                   {}, false, p),
                 c10::Error);
  }
  EXPECT_NO_THROW(
      embedding_bag(longs({0}), weight_k(), longs({0}), EmbeddingBagFuncOptions().padding_idx(-5)));
}

// 16: from_pretrained, max mode, max_norm 2, norm_type 0.5.
TEST(EmbeddingBagUpstream, FromPretrainedOptions) {
  Tensor w = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 3});
  torch::Tensor tw = to_torch(w);
  EmbeddingBag m = EmbeddingBag::from_pretrained(w, EmbeddingBagFromPretrainedOptions()
                                                        .mode(EmbeddingBagMode::kMax)
                                                        .max_norm(2.0)
                                                        .norm_type(0.5));
  auto tm =
      torch::nn::EmbeddingBag::from_pretrained(tw, torch::nn::EmbeddingBagFromPretrainedOptions()
                                                       .mode(torch::kMax)
                                                       .max_norm(2.0)
                                                       .norm_type(0.5));
  Tensor in = Tensor::from_vector<std::int64_t>({0, 1, 2, 1}, {2, 2});
  Tensor out = m(in);
  torch::Tensor tout = tm(to_torch(in));
  EXPECT_TRUE(bitwise_equal(m.weight(), tw));
  EXPECT_TRUE(bitwise_equal(out, tout));
  for (int k = 0; k < 3; ++k) {  // every looked-up row now has a 0.5-norm <= 2
    double s = 0;
    for (int d = 0; d < 3; ++d) s += std::sqrt(std::abs(w.at<float>(k, d)));
    EXPECT_LE(s * s, 2.0 + 1e-5);
  }
}

// 24, 25: 1-D with offsets == padded 2-D, forward and gradients, all modes x sparse x
// include_last_offset, also all-padding bags; each against torch too.
TEST(EmbeddingBagUpstream, PaddingIdx1DEquals2D) {
  const std::int64_t pad = 0;
  const std::vector<std::vector<std::int64_t>> bags = {
      {1, 2, 3}, {4}, {}, {5, 1}, {0, 0}};  // ragged, pad 0
  std::vector<std::int64_t> flat, off, padded;
  const std::int64_t width = 3;
  for (const auto& b : bags) {
    off.push_back(static_cast<std::int64_t>(flat.size()));
    for (std::int64_t j = 0; j < width; ++j) {
      padded.push_back(j < static_cast<std::int64_t>(b.size()) ? b[j] : pad);
      if (j < static_cast<std::int64_t>(b.size())) flat.push_back(b[j]);
    }
  }
  std::mt19937_64 rng(5);
  Tensor w = random_values(rng, {6, 4}, DType::kFloat64, false);
  Tensor grad = random_values(rng, {5, 4}, DType::kFloat64, false);
  Tensor in2 = Tensor::from_vector<std::int64_t>(padded, {5, width});
  for (auto mode : {EmbeddingBagMode::kSum, EmbeddingBagMode::kMean, EmbeddingBagMode::kMax}) {
    for (bool sparse : {false, true}) {
      if (sparse && mode == EmbeddingBagMode::kMax) continue;
      for (bool ilo : {false, true}) {
        auto o = EmbeddingBagFuncOptions()
                     .mode(mode)
                     .padding_idx(pad)
                     .sparse(sparse)
                     .include_last_offset(ilo);
        std::vector<std::int64_t> offs = off;
        if (ilo) offs.push_back(static_cast<std::int64_t>(flat.size()));
        auto r1 = embedding_bag_forward(longs(flat), w, longs(offs), o);
        auto r2 = embedding_bag_forward(in2, w, {}, o);
        EXPECT_TRUE(r1.output.equal(r2.output));
        auto t = at::_embedding_bag(to_torch(w), tlongs(flat), tlongs(offs), false, mode_int(mode),
                                    sparse, {}, ilo, pad);
        EXPECT_TRUE(bitwise_equal(r1.output, std::get<0>(t)));
        auto g1 = embedding_bag_backward(grad, longs(flat), longs(offs), r1.max_indices, 6, o);
        auto g2 = embedding_bag_backward(grad, in2, {}, r2.max_indices, 6, o);
        Tensor d1 = sparse ? std::get<SparseGrad>(g1).to_dense() : std::get<Tensor>(g1);
        Tensor d2 = sparse ? std::get<SparseGrad>(g2).to_dense() : std::get<Tensor>(g2);
        EXPECT_TRUE(d1.equal(d2)) << mode_name(mode) << sparse << ilo;
        torch::Tensor tg = at::_embedding_bag_backward(
            to_torch(grad), tlongs(flat), tlongs(offs), std::get<1>(t), std::get<2>(t),
            std::get<3>(t), 6, false, mode_int(mode), sparse, {}, pad);
        EXPECT_TRUE(bitwise_equal(d1, sparse ? tg.to_dense() : tg));
        for (int d = 0; d < 4; ++d)
          EXPECT_EQ(d1.at<double>(0, d), 0.0);  // padding row: no gradient
        for (int d = 0; d < 4; ++d) EXPECT_EQ(r1.output.at<double>(4, d), 0.0);  // all-padding bag
      }
    }
  }
}

// 27: empty input with offsets [0] / [0, 0]: zeros, int/long combinations, sparse and dense.
TEST(EmbeddingBagUpstream, EmptyInput) {
  Tensor w = weight_k();
  for (DType idt : {DType::kInt32, DType::kInt64}) {
    for (DType odt : {DType::kInt32, DType::kInt64}) {
      for (std::int64_t nb : {1, 2}) {
        for (bool sparse : {false, true}) {
          for (auto mode :
               {EmbeddingBagMode::kSum, EmbeddingBagMode::kMean, EmbeddingBagMode::kMax}) {
            if (sparse && mode == EmbeddingBagMode::kMax) continue;
            Tensor in = Tensor::empty({0}, idt);
            Tensor off = Tensor::zeros({nb}, odt);
            auto o = EmbeddingBagFuncOptions().mode(mode).sparse(sparse);
            auto r = embedding_bag_forward(in, w, off, o);
            auto t = at::_embedding_bag(to_torch(w), to_torch(in), to_torch(off), false,
                                        mode_int(mode), sparse);
            EXPECT_TRUE(bitwise_equal(r.output, std::get<0>(t)));
            Tensor g = Tensor::full({nb, 2}, 1.0, DType::kFloat32);
            auto eg = embedding_bag_backward(g, in, off, r.max_indices, 5, o);
            Tensor d = sparse ? std::get<SparseGrad>(eg).to_dense() : std::get<Tensor>(eg);
            for (int i = 0; i < 10; ++i) EXPECT_EQ(d.get_double(i), 0.0);
          }
        }
      }
    }
  }
}

// 28: out-of-range ids (slow path: padding_idx 0).
TEST(EmbeddingBagUpstream, OutOfBoundsIdx) {
  Tensor w = Tensor::zeros({10, 3}, DType::kFloat32);
  for (std::int64_t bad : {-1, 11}) {
    for (auto mode : {EmbeddingBagMode::kSum, EmbeddingBagMode::kMean, EmbeddingBagMode::kMax}) {
      Tensor in = longs({0, 1, bad});
      try {
        at::_embedding_bag(to_torch(w), to_torch(in), tlongs({0}), false, mode_int(mode), false, {},
                           false, 0);
        ADD_FAILURE() << "torch accepted " << bad;
      } catch (const c10::Error& e) {
        EXPECT_NE(std::string(e.what()).find("Expected idx >= 0 && idx < num_embeddings"),
                  std::string::npos);
      }
      EXPECT_THROW(
          embedding_bag(in, w, longs({0}), EmbeddingBagFuncOptions().mode(mode).padding_idx(0)),
          IndexError);
    }
  }
}

// 30: per_sample_weights failures: dtype, shape, mode mean/max.
TEST(EmbeddingBagUpstream, PerSampleWeightsFailures) {
  namespace F = torch::nn::functional;
  Tensor w = weight_k();
  Tensor in = longs({0, 1, 2});
  Tensor psw64 = Tensor::full({3}, 1.0, DType::kFloat64);
  EXPECT_THROW(F::embedding_bag(to_torch(in), to_torch(w),
                                F::EmbeddingBagFuncOptions()
                                    .offsets(tlongs({0}))
                                    .mode(torch::kSum)
                                    .per_sample_weights(to_torch(psw64))),
               c10::Error);
  EXPECT_THROW(embedding_bag(in, w, longs({0}),
                             EmbeddingBagFuncOptions().mode(EmbeddingBagMode::kSum), psw64),
               ValueError);
  Tensor psw_short = Tensor::full({2}, 1.0, DType::kFloat32);
  EXPECT_THROW(F::embedding_bag(to_torch(in), to_torch(w),
                                F::EmbeddingBagFuncOptions()
                                    .offsets(tlongs({0}))
                                    .mode(torch::kSum)
                                    .per_sample_weights(to_torch(psw_short))),
               c10::Error);
  EXPECT_THROW(embedding_bag(in, w, longs({0}),
                             EmbeddingBagFuncOptions().mode(EmbeddingBagMode::kSum), psw_short),
               ValueError);
  Tensor psw = Tensor::full({3}, 1.0, DType::kFloat32);
  for (auto mode : {EmbeddingBagMode::kMean, EmbeddingBagMode::kMax}) {
    const torch::nn::EmbeddingBagMode tmode = mode == EmbeddingBagMode::kMean
                                                  ? torch::nn::EmbeddingBagMode(torch::kMean)
                                                  : torch::nn::EmbeddingBagMode(torch::kMax);
    EXPECT_THROW(F::embedding_bag(to_torch(in), to_torch(w),
                                  F::EmbeddingBagFuncOptions()
                                      .offsets(tlongs({0}))
                                      .mode(tmode)
                                      .per_sample_weights(to_torch(psw))),
                 c10::Error);
    EXPECT_THROW(embedding_bag(in, w, longs({0}), EmbeddingBagFuncOptions().mode(mode), psw),
                 NotImplementedError);
  }
}

// 31: empty input, 5 empty bags, with per_sample_weights: output 0, weight grad 0.
TEST(EmbeddingBagUpstream, EmptyPerSampleWeightsAndOffsets) {
  for (DType dt : {DType::kFloat32, DType::kFloat64, DType::kFloat16}) {
    Tensor w = weight_k().to(dt);
    Tensor in = longs({}), off = longs({0, 0, 0, 0, 0}), psw = Tensor::empty({0}, dt);
    auto o = EmbeddingBagFuncOptions().mode(EmbeddingBagMode::kSum);
    Tensor out = embedding_bag(in, w, off, o, psw);
    auto t = at::_embedding_bag(to_torch(w), to_torch(in), to_torch(off), false, 0, false,
                                to_torch(psw));
    EXPECT_TRUE(bitwise_equal(out, std::get<0>(t)));
    Tensor g = Tensor::full({5, 2}, 1.0, dt);
    Tensor gw = embedding_bag_dense_backward(g, in, off, {}, 5, o, psw);
    EXPECT_TRUE(bitwise_equal(
        gw, at::_embedding_bag_backward(to_torch(g), to_torch(in), to_torch(off), std::get<1>(t),
                                        std::get<2>(t), std::get<3>(t), 5, false, 0, false,
                                        to_torch(psw))));
    EXPECT_EQ(embedding_bag_per_sample_weights_backward(g, w, in, off, o).numel(), 0);
  }
}

// 32, 33, 34: per_sample_weights with offsets, with include_last_offset, and with 2-D input,
// against torch's module with autograd (weight and psw gradients).
TEST(EmbeddingBagUpstream, PerSampleWeightsAutograd) {
  std::mt19937_64 rng(32);
  for (int variant = 0; variant < 3; ++variant) {
    for (DType dt : {DType::kFloat32, DType::kFloat64, DType::kFloat16}) {
      for (bool sparse : {false, true}) {
        const std::int64_t num = 10, dim = 5;
        Tensor w = random_values(rng, {num, dim}, dt, false);
        std::vector<std::int64_t> ids;
        for (int i = 0; i < (variant == 2 ? 1200 : 25); ++i)
          ids.push_back(uniform(rng, 0, num - 1));
        Tensor in = variant == 2 ? Tensor::from_vector<std::int64_t>(ids, {100, 12}) : longs(ids);
        Tensor off = variant == 0   ? longs({0, 0, 4, 10, 25})
                     : variant == 1 ? longs({0, 3, 3, 20, 25})
                                    : Tensor();
        Tensor psw = random_values(rng, in.shape(), dt, false);
        auto tm = torch::nn::EmbeddingBag(torch::nn::EmbeddingBagOptions(num, dim)
                                              .mode(torch::kSum)
                                              .sparse(sparse)
                                              .include_last_offset(variant == 1));
        {
          torch::NoGradGuard g;
          tm->weight.set_data(to_torch(w));
        }
        torch::Tensor tpsw = to_torch(psw).requires_grad_(true);
        torch::Tensor tout = variant == 2 ? tm->forward(to_torch(in), torch::Tensor(), tpsw)
                                          : tm->forward(to_torch(in), to_torch(off), tpsw);
        Tensor grad = random_values(rng, {tout.size(0), dim}, dt, false);
        tout.backward(to_torch(grad));
        EmbeddingBag m(EmbeddingBagOptions(num, dim)
                           .mode(EmbeddingBagMode::kSum)
                           .sparse(sparse)
                           .include_last_offset(variant == 1)
                           ._weight(w.clone()));
        Tensor out = m(in, off, psw);
        EXPECT_TRUE(bitwise_equal(out, tout.detach())) << variant << dtype_name(dt);
        Tensor dpsw = m.backward(in, off, grad, psw);
        EXPECT_TRUE(bitwise_equal(dpsw, tpsw.grad()));
        Tensor gw = sparse ? m.parameter().sparse_grad().to_dense() : m.parameter().grad();
        torch::Tensor tgw = sparse ? tm->weight.grad().to_dense() : tm->weight.grad();
        Tensor gbound = embedding_bag_dense_backward(abs_of(grad), in, off, {}, num,
                                                     EmbeddingBagFuncOptions()
                                                         .mode(EmbeddingBagMode::kSum)
                                                         .include_last_offset(variant == 1),
                                                     abs_of(psw));
        EXPECT_TRUE(within_bound(gw, tgw, gbound, 2.0 * (max_duplicates(ids) + 2)))
            << variant << dtype_name(dt) << sparse;
      }
    }
  }
}

// 35: the known example: outputs, gradients, the 2-D form, all-empty bags.
TEST(EmbeddingBagUpstream, KnownExample) {
  Tensor w = weight_k();
  Tensor in = longs({3, 1, 1, 1, 4, 0}), off = longs({0, 0, 3, 3, 6});
  Tensor grad = Tensor::from_vector<float>({99, 99, 1, 2, 99, 99, 3, 4, 99, 99}, {5, 2});
  for (auto mode : {EmbeddingBagMode::kSum, EmbeddingBagMode::kMean, EmbeddingBagMode::kMax}) {
    for (std::optional<std::int64_t> pad :
         {std::optional<std::int64_t>(), std::optional<std::int64_t>(1)}) {
      auto o = EmbeddingBagFuncOptions().mode(mode).padding_idx(pad);
      auto r = embedding_bag_forward(in, w, off, o);
      auto t = at::_embedding_bag(to_torch(w), to_torch(in), to_torch(off), false, mode_int(mode),
                                  false, {}, false, pad.value_or(-1));
      EXPECT_TRUE(bitwise_equal(r.output, std::get<0>(t)));
      Tensor g = embedding_bag_dense_backward(grad, in, off, r.max_indices, 5, o);
      EXPECT_TRUE(bitwise_equal(
          g, at::_embedding_bag_backward(to_torch(grad), to_torch(in), to_torch(off),
                                         std::get<1>(t), std::get<2>(t), std::get<3>(t), 5, false,
                                         mode_int(mode), false, {}, pad.value_or(-1))));
    }
  }
  // 2-D form through the modules.
  Tensor in2 = Tensor::from_vector<std::int64_t>({3, 1, 1, 1, 4, 0}, {2, 3});
  auto tm = torch::nn::EmbeddingBag::from_pretrained(
      to_torch(w), torch::nn::EmbeddingBagFromPretrainedOptions().mode(torch::kSum));
  EmbeddingBag m = EmbeddingBag::from_pretrained(
      w, EmbeddingBagFromPretrainedOptions().mode(EmbeddingBagMode::kSum));
  EXPECT_TRUE(bitwise_equal(m(in2), tm(to_torch(in2))));
  // Illegal combinations: both reject.
  namespace F = torch::nn::functional;
  EXPECT_THROW(F::embedding_bag(to_torch(in2), to_torch(w),
                                F::EmbeddingBagFuncOptions().offsets(tlongs({0, 3}))),
               c10::Error);
  EXPECT_THROW(embedding_bag(in2, w, longs({0, 3})), ValueError);
  EXPECT_THROW(F::embedding_bag(to_torch(in), to_torch(w)), c10::Error);
  EXPECT_THROW(embedding_bag(in, w), ValueError);
  EXPECT_THROW(F::embedding_bag(to_torch(in), to_torch(w),
                                F::EmbeddingBagFuncOptions().offsets(tlongs({1, 3}))),
               c10::Error);
  EXPECT_THROW(embedding_bag(in, w, longs({1, 3})), ValueError);
  EXPECT_THROW(F::embedding_bag(to_torch(in), to_torch(w),
                                F::EmbeddingBagFuncOptions().offsets(tlongs({0, 100}))),
               c10::Error);
  EXPECT_THROW(embedding_bag(in, w, longs({0, 100})), ValueError);
}

// 36: a non-contiguous torch weight (W[:, :3]) gives what emb gives on the same values.
TEST(EmbeddingBagUpstream, NonContiguousWeight) {
  std::mt19937_64 rng(36);
  Tensor big = random_values(rng, {10, 6}, DType::kFloat32, false);
  torch::Tensor tslice = to_torch(big).slice(1, 0, 3);
  Tensor w = from_torch(tslice);  // contiguous copy
  Tensor in = longs({0, 3, 9, 4, 4, 2, 1}), off = longs({0, 2, 5});
  for (auto mode : {EmbeddingBagMode::kSum, EmbeddingBagMode::kMean, EmbeddingBagMode::kMax}) {
    auto t = at::_embedding_bag(tslice, to_torch(in), to_torch(off), false, mode_int(mode));
    EXPECT_TRUE(bitwise_equal(embedding_bag(in, w, off, EmbeddingBagFuncOptions().mode(mode)),
                              std::get<0>(t)));
  }
}

// 38: half, sum, sparse: forward and gradient against torch (and Embedding + sum).
TEST(EmbeddingBagUpstream, Half) {
  std::mt19937_64 rng(38);
  Tensor w = random_values(rng, {20, 7}, DType::kFloat16, false);
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 40; ++i) ids.push_back(uniform(rng, 0, 19));
  Tensor in = Tensor::from_vector<std::int64_t>(ids, {8, 5});
  auto o = EmbeddingBagFuncOptions().mode(EmbeddingBagMode::kSum).sparse(true);
  Tensor out = embedding_bag(in, w, {}, o);
  namespace F = torch::nn::functional;
  torch::Tensor tw = to_torch(w).requires_grad_(true);
  torch::Tensor tout = F::embedding_bag(
      to_torch(in), tw, F::EmbeddingBagFuncOptions().mode(torch::kSum).sparse(true));
  EXPECT_TRUE(bitwise_equal(out, tout.detach()));
  Tensor grad = random_values(rng, {8, 7}, DType::kFloat16, false);
  tout.backward(to_torch(grad));
  SparseGrad s = embedding_bag_sparse_backward(grad, in, {}, 20, o);
  EXPECT_TRUE(bitwise_equal(s.values(), tw.grad()._values()));
  EXPECT_TRUE(bitwise_equal(s.indices(), tw.grad()._indices().reshape({-1}).contiguous()));
}

// ---------------------------------------------------------------------------------------------
// Spec §7: the known 1.13 differences, asserted as differences.

// pytorch#190063: torch divides by another id's count; emb by the id's own.
TEST(EmbeddingBagDifferences, ScaleGradByFreqCounts) {
  Tensor w = Tensor::zeros({4, 1}, DType::kFloat32);
  Tensor ones = Tensor::full({2, 1}, 1.0, DType::kFloat32);
  auto o = EmbeddingBagFuncOptions().mode(EmbeddingBagMode::kSum).scale_grad_by_freq(true);
  for (auto [ids, row, torch_value] :
       {std::tuple{std::vector<std::int64_t>{0, 0, 0, 1}, 1, 1.0f / 3},
        std::tuple{std::vector<std::int64_t>{3, 1, 1, 2}, 2, 0.5f}}) {
    Tensor in = longs(ids), off = longs({0, 2});
    auto t = at::_embedding_bag(to_torch(w), to_torch(in), to_torch(off), true, 0);
    torch::Tensor tg =
        at::_embedding_bag_backward(to_torch(ones), to_torch(in), to_torch(off), std::get<1>(t),
                                    std::get<2>(t), std::get<3>(t), 4, true, 0, false, {});
    EXPECT_EQ(tg[row][0].item<float>(), torch_value);
    Tensor g = embedding_bag_dense_backward(ones, in, off, {}, 4, o);
    EXPECT_EQ(g.at<float>(row, 0), 1.0f);
    // Sparse with sgf: torch raises, emb gives the same as its dense gradient.
    EXPECT_THROW(
        at::_embedding_bag_backward(to_torch(ones), to_torch(in), to_torch(off), std::get<1>(t),
                                    std::get<2>(t), std::get<3>(t), 4, true, 0, true, {}),
        c10::Error);
    EXPECT_TRUE(embedding_bag_sparse_backward(ones, in, off, 4, o).to_dense().equal(g));
  }
}

// 2-D input with include_last_offset: 1.13 drops the last bag, or corrupts memory (double free,
// segfault), so it never gets that input here; emb (like 2.x) ignores the flag for 2-D input,
// which torch computes without it.
TEST(EmbeddingBagDifferences, IncludeLastOffsetWith2DInput) {
  Tensor w = weight_k();
  Tensor in2 = Tensor::from_vector<std::int64_t>({3, 1, 1, 1, 4, 0}, {2, 3});
  namespace F = torch::nn::functional;
  Tensor ours = embedding_bag(
      in2, w, {}, EmbeddingBagFuncOptions().mode(EmbeddingBagMode::kSum).include_last_offset(true));
  EXPECT_EQ(ours.size(0), 2);
  EXPECT_TRUE(
      bitwise_equal(ours, F::embedding_bag(to_torch(in2), to_torch(w),
                                           F::EmbeddingBagFuncOptions().mode(torch::kSum))));
}

// A 2-D input of shape [B, 0]: B empty bags. libtorch's F::embedding_bag builds the offsets with
// arange(0, numel, N) and refuses N = 0 ("step must be nonzero"); emb gives B zero rows.
TEST(EmbeddingBagDifferences, TwoDInputWithEmptyRows) {
  const Tensor w = weight_k();
  const Tensor in = Tensor::empty({3, 0}, DType::kInt64);
  namespace F = torch::nn::functional;
  for (auto mode : {EmbeddingBagMode::kSum, EmbeddingBagMode::kMean, EmbeddingBagMode::kMax}) {
    const torch::nn::EmbeddingBagMode tmode =
        mode == EmbeddingBagMode::kSum    ? torch::nn::EmbeddingBagMode(torch::kSum)
        : mode == EmbeddingBagMode::kMean ? torch::nn::EmbeddingBagMode(torch::kMean)
                                          : torch::nn::EmbeddingBagMode(torch::kMax);
    try {
      F::embedding_bag(to_torch(in), to_torch(w), F::EmbeddingBagFuncOptions().mode(tmode));
      ADD_FAILURE() << "libtorch accepted a [3, 0] input";
    } catch (const c10::Error& e) {
      EXPECT_NE(std::string(e.what()).find("step must be nonzero"), std::string::npos);
    }
    const Tensor out = embedding_bag(in, w, {}, EmbeddingBagFuncOptions().mode(mode));
    ASSERT_EQ(out.shape(), (Shape{3, 2}));
    for (std::int64_t i = 0; i < out.numel(); ++i) EXPECT_EQ(out.get_double(i), 0.0);
    // ... which is what torch gives for 3 empty bags written with offsets.
    EXPECT_TRUE(bitwise_equal(
        out, std::get<0>(at::_embedding_bag(to_torch(w), torch::empty({0}, torch::kLong),
                                            tlongs({0, 0, 0}), false, mode_int(mode)))));
  }
}

// bfloat16: 1.13 rejects it; emb pools in float32 and rounds once (what 2.x does).
TEST(EmbeddingBagDifferences, BFloat16) {
  std::mt19937_64 rng(16);
  Tensor w = random_values(rng, {6, 5}, DType::kBFloat16, false);
  Tensor in = longs({0, 5, 5, 2, 1, 3, 4}), off = longs({0, 3});
  EXPECT_THROW(at::_embedding_bag(to_torch(w), to_torch(in), to_torch(off), false, 0), c10::Error);
  for (auto mode : {EmbeddingBagMode::kSum, EmbeddingBagMode::kMean, EmbeddingBagMode::kMax}) {
    Tensor ours = embedding_bag(in, w, off, EmbeddingBagFuncOptions().mode(mode));
    auto t = at::_embedding_bag(to_torch(w).to(torch::kFloat), to_torch(in), to_torch(off), false,
                                mode_int(mode));
    torch::Tensor expect =
        mode == EmbeddingBagMode::kMean
            ? (std::get<0>(at::_embedding_bag(to_torch(w).to(torch::kFloat), to_torch(in),
                                              to_torch(off), false, 0))
                   .to(torch::kBFloat16)
                   .to(torch::kFloat) /
               torch::tensor({3.0f, 4.0f}).unsqueeze(1))
                  .to(torch::kBFloat16)
            : std::get<0>(t).to(torch::kBFloat16);
    EXPECT_TRUE(bitwise_equal(ours, expect)) << mode_name(mode);
  }
}

// libtorch's EmbeddingBag leaves the padding row random; emb zeroes it (as Python does).
TEST(EmbeddingBagDifferences, PaddingRowInit) {
  torch::manual_seed(0);
  torch::nn::EmbeddingBag tm(torch::nn::EmbeddingBagOptions(10, 3).padding_idx(2));
  EXPECT_GT(tm->weight[2].abs().sum().item<float>(), 0.0f);
  EmbeddingBag m(EmbeddingBagOptions(10, 3).padding_idx(2));
  for (int d = 0; d < 3; ++d) EXPECT_EQ(m.weight().at<float>(2, d), 0.0f);
}

}  // namespace
}  // namespace emb
