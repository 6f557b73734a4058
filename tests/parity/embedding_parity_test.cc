// Embedding parity with libtorch 1.13: forward, renorm, dense and sparse backward on identical
// inputs, over randomized configurations and PyTorch's own test cases (spec §1, §4.1, §6, §7).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "emb/emb.h"
#include "index_check.h"
#include "parity/torch_bridge.h"

namespace emb {
namespace {

using testing::bitwise_equal;
using testing::close_ulps;
using testing::from_torch;
using testing::to_torch;

// Renormed rows are bitwise: ATen's norm is reproduced lane by lane, and so is the scale.
constexpr std::int64_t kRenormUlps = 0;

// |ours - exact| <= n * eps(dtype) * sum|terms| element-wise: the error bound of a sum of n terms
// rounded after each addition (n bounded by the index count).
::testing::AssertionResult within_rounding(const Tensor& ours, const Tensor& e, const Tensor& a) {
  const double eps = ours.dtype() == DType::kFloat64   ? 0x1p-52
                     : ours.dtype() == DType::kFloat32 ? 0x1p-23
                     : ours.dtype() == DType::kFloat16 ? 0x1p-10
                                                       : 0x1p-7;
  const double largest = ours.dtype() == DType::kFloat64   ? std::numeric_limits<double>::max()
                         : ours.dtype() == DType::kFloat32 ? std::numeric_limits<float>::max()
                         : ours.dtype() == DType::kFloat16 ? 65504.0
                                                           : 0x1.FEp127;
  if (e.numel() != ours.numel()) return ::testing::AssertionFailure() << "sizes differ";
  for (std::int64_t i = 0; i < ours.numel(); ++i) {
    const double bound = 2 * eps * a.get_double(i);
    // inf or NaN among the terms, or partial sums that may overflow: the order decides.
    if (!(a.get_double(i) <= largest / 2)) continue;
    if (std::abs(ours.get_double(i) - e.get_double(i)) > bound) {
      return ::testing::AssertionFailure()
             << "element " << i << ": " << ours.get_double(i) << " vs exact " << e.get_double(i);
    }
  }
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------------------------
// Randomized configurations

// norm_types that are not float32 values; the first ones round to 0, 1, 2, inf and -inf as
// float32.
const std::vector<double> kNonFloatNormTypes = {
    1e-50, 1.0000000001, 2.0000000001, 1e39, -1e39, 0.3, 3.0000000001, -0.7, 2.5e-8, 1.9999999999};

struct Config {
  std::int64_t num = 0;
  std::int64_t dim = 0;
  DType weight_dtype = DType::kFloat32;
  DType index_dtype = DType::kInt64;
  Shape index_shape;
  std::optional<std::int64_t> padding_idx;
  std::optional<double> max_norm;
  double norm_type = 2.0;
  bool scale_grad_by_freq = false;
  bool sparse = false;

  std::string describe() const {
    std::string s = "num=" + std::to_string(num) + " dim=" + std::to_string(dim) +
                    " weight=" + std::string(dtype_name(weight_dtype)) +
                    " index=" + std::string(dtype_name(index_dtype)) +
                    " shape=" + shape_to_string(index_shape);
    if (padding_idx) s += " padding_idx=" + std::to_string(*padding_idx);
    if (max_norm)
      s += " max_norm=" + std::to_string(*max_norm) + " norm_type=" + std::to_string(norm_type);
    if (scale_grad_by_freq) s += " sgf";
    if (sparse) s += " sparse";
    return s;
  }
};

template <typename T>
const T& pick(std::mt19937_64& rng, const std::vector<T>& v) {
  return v[std::uniform_int_distribution<std::size_t>(0, v.size() - 1)(rng)];
}

Config random_config(std::mt19937_64& rng) {
  Config c;
  c.num = pick<std::int64_t>(rng, {1, 2, 3, 5, 10, 37, 100, 1000});
  c.dim = pick<std::int64_t>(rng, {0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 64, 129});
  c.weight_dtype = pick(rng, std::vector{DType::kFloat32, DType::kFloat32, DType::kFloat64,
                                         DType::kFloat16, DType::kBFloat16});
  c.index_dtype = pick(rng, std::vector{DType::kInt32, DType::kInt64});
  c.index_shape = pick(
      rng, std::vector<Shape>{{}, {0}, {2, 0}, {1}, {5}, {40}, {3, 4}, {2, 3, 4}, {1, 64}, {200}});
  std::uniform_int_distribution<std::int64_t> any_row(-c.num, c.num - 1);
  if (rng() % 3 == 0) c.padding_idx = any_row(rng);
  if (rng() % 3 == 0) {
    c.max_norm = pick<double>(rng, {1.0, 0.5, 2.0, 3.5, 0.0, -1.0});
    c.norm_type = pick<double>(
        rng, {2.0, 2.0, 1.0, 3.0, 0.5, 0.0, -1.0, std::numeric_limits<double>::infinity(),
              -std::numeric_limits<double>::infinity()});
    // Now and then a norm_type that is no float32 value: PyTorch 1.13 narrows it to float,
    // 2.x (and emb) keep the double; some of them round to float 0, 1, 2 or inf.
    if (rng() % 3 == 0) c.norm_type = pick<double>(rng, kNonFloatNormTypes);
  }
  c.scale_grad_by_freq = rng() % 3 == 0;
  c.sparse = rng() % 2 == 0;
  return c;
}

// Ids drawn from a few distinct rows now and then, so that duplicates (even > 16 of one id) occur.
Tensor random_indices(std::mt19937_64& rng, const Config& c) {
  Tensor ids = Tensor::empty(c.index_shape, c.index_dtype);
  const std::int64_t span = rng() % 2 ? c.num : std::min<std::int64_t>(c.num, 3);
  std::uniform_int_distribution<std::int64_t> row(0, span - 1);
  for (std::int64_t i = 0; i < ids.numel(); ++i) ids.set_double(i, static_cast<double>(row(rng)));
  return ids;
}

// Normal values (scaled by 1/4 .. 4, some exact zeros); with extremes, one tensor in four also
// holds subnormals, +-inf, NaN, the largest finite values and wide exponents.
Tensor random_values(std::mt19937_64& rng, const Shape& shape, DType dtype, bool extremes = false) {
  Tensor t = Tensor::empty(shape, dtype);
  std::normal_distribution<double> normal(0.0, 1.0);
  const double scale = std::ldexp(1.0, static_cast<int>(rng() % 5) - 2);  // 1/4 .. 4
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    const double v = rng() % 23 == 0 ? 0.0 : normal(rng) * scale;  // some exact zeros for p = 0
    t.set_double(i, dtype == DType::kInt32 || dtype == DType::kInt64 ? std::round(v * 10) : v);
  }
  if (extremes && !is_integral(dtype) && rng() % 4 == 0) testing::sprinkle_extremes(rng, t, 0.1);
  return t;
}

struct Tally {
  int configs = 0, forward = 0, renorm = 0, renorm_bitwise = 0, renorm_at_boundary = 0, dense = 0,
      sparse = 0, sparse_sgf_divergence = 0, sparse_0d_padding_divergence = 0;
  int renorm_non_float_p = 0, renorm_special_p = 0, renorm_13_differs = 0, coalesce_aten_order = 0,
      coalesce_many_duplicates = 0, coalesce_input_order_differs = 0, extreme_configs = 0;
};

// 0, +-1, +-2 or +-inf: the values the norm kernel treats specially (as float32, p rounds to one
// of them for some norm_types that are not).
bool special_p(double p) {
  return p == 0 || p == 1 || p == 2 || std::isinf(p);
}

// What PyTorch 2.x's generic norm kernel (NormOps, p kept as a double and converted to the
// accumulation type) makes of renorm: for each distinct id, norm = (sum |x|^p)^(1/p) summed
// left to right in float (float32 rows) or double (float64 rows); 16-bit rows in their own type,
// p through float, as emb defines them; then the scale as in every renorm.
template <typename T>
void reference_renorm_generic(const Tensor& weight, const std::vector<std::int64_t>& rows,
                              double max_norm, double p_double) {
  using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
  constexpr bool k16 = std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;
  const auto r = [](A v) { return k16 ? A(T(v)) : v; };
  const A p = k16 ? r(A(static_cast<float>(p_double))) : static_cast<A>(p_double);
  const std::int64_t dim = weight.size(1);
  for (const std::int64_t k : rows) {
    T* row = weight.data<T>() + k * dim;
    A acc = 0;
    for (std::int64_t d = 0; d < dim; ++d) {
      A term = std::pow(std::abs(A(row[d])), p);
      if constexpr (std::is_same_v<T, BFloat16>) term = r(term);
      acc = r(acc + term);
    }
    const double norm = static_cast<double>(A(T(std::pow(acc, r(A(1) / p)))));
    if (norm > max_norm) {
      const A scale = A(T(static_cast<A>(max_norm / (norm + 1e-7))));
      for (std::int64_t d = 0; d < dim; ++d) row[d] = T(A(row[d]) * scale);
    }
  }
}

void run_config(std::mt19937_64& rng, const Config& c, Tally& tally) {
  SCOPED_TRACE(c.describe());
  const Tensor weight = random_values(rng, {c.num, c.dim}, c.weight_dtype, true);
  const Tensor ids = random_indices(rng, c);
  const torch::Tensor ids_t = to_torch(ids);
  torch::Tensor weight_t = to_torch(weight);
  const Tensor weight_before = weight.clone();
  const std::int64_t pad =
      c.padding_idx ? (*c.padding_idx < 0 ? *c.padding_idx + c.num : *c.padding_idx) : -1;
  // norm_type as PyTorch 1.13 sees it (narrowed to float), and whether 1.13 then runs the kernel
  // 2.x runs with the same p: always for float32 values; for the others, only on 16-bit and
  // float32 rows (which convert p to float anyway) when the float value is not special.
  const double p32 = static_cast<double>(static_cast<float>(c.norm_type));
  const bool float_p = p32 == c.norm_type;
  const bool same_kernel_in_13 = float_p || (c.weight_dtype != DType::kFloat64 && !special_p(p32));

  // Now and then max_norm is exactly torch's norm of the first looked-up row: the strict > must
  // leave that row bitwise untouched in both, which only an identical norm achieves.
  std::optional<double> max_norm = c.max_norm;
  std::int64_t boundary_row = -1;
  Tensor boundary_before;
  if (max_norm && ids.numel() > 0 && c.dim > 0 && float_p && rng() % 3 == 0) {
    const std::int64_t row = static_cast<std::int64_t>(ids.get_double(0));
    const double norm = weight_t[row].norm(c.norm_type).item<double>();
    if (std::isfinite(norm)) {
      boundary_row = row;
      max_norm = norm;
      boundary_before = weight.select(boundary_row).clone();
    }
  }
  // Forward (with the in-place renorm first, as F.embedding does).
  const Tensor out = embedding(
      ids, weight,
      EmbeddingFuncOptions().padding_idx(c.padding_idx).max_norm(max_norm).norm_type(c.norm_type));
  torch::Tensor lookup_t = weight_t;  // the table torch's lookup reads
  if (max_norm) {
    at::embedding_renorm_(weight_t, ids_t, *max_norm, c.norm_type);
    ++tally.renorm;
    if (same_kernel_in_13) {
      ASSERT_TRUE(bitwise_equal(weight, weight_t)) << "renormed weight";
      ++tally.renorm_bitwise;
    } else {
      // 1.13 narrowed p to float (a double row then has another exponent, and p may have become
      // 0, 1, 2 or inf, another kernel): emb follows 2.x, which keeps p; check it against 2.x's
      // generic kernel.
      const Tensor expect = weight_before.clone();
      std::vector<std::int64_t> rows(ids.numel());
      for (std::int64_t i = 0; i < ids.numel(); ++i)
        rows[i] = static_cast<std::int64_t>(ids.get_double(i));
      std::sort(rows.begin(), rows.end());
      rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
      detail::visit_floating(c.weight_dtype, [&](auto tag) {
        reference_renorm_generic<decltype(tag)>(expect, rows, *max_norm, c.norm_type);
      });
      ASSERT_TRUE(bitwise_equal(weight, to_torch(expect))) << "renorm vs 2.x's generic kernel";
      ++tally.renorm_special_p;
      if (!bitwise_equal(weight, weight_t)) ++tally.renorm_13_differs;
      lookup_t = to_torch(weight);
    }
    if (!float_p) {
      // Both fed the float-rounded p: 1.13's narrowing made explicit, bitwise.
      const Tensor w32 = weight_before.clone();
      torch::Tensor w32_t = to_torch(weight_before);
      embedding_renorm_(w32, ids, *max_norm, p32);
      at::embedding_renorm_(w32_t, ids_t, *max_norm, p32);
      ASSERT_TRUE(bitwise_equal(w32, w32_t)) << "renorm with the float-rounded norm_type " << p32;
      ++tally.renorm_non_float_p;
    }
    if (boundary_row >= 0) {
      ASSERT_TRUE(bitwise_equal(weight.select(boundary_row), to_torch(boundary_before)))
          << "norm == max_norm renormed";
      ASSERT_TRUE(bitwise_equal(boundary_before, weight_t[boundary_row]));
      ++tally.renorm_at_boundary;
    }
  } else {
    ASSERT_TRUE(bitwise_equal(weight, weight_t)) << "weight changed without max_norm";
  }
  const torch::Tensor out_t = at::embedding(lookup_t, ids_t, pad, c.scale_grad_by_freq, c.sparse);
  ASSERT_TRUE(bitwise_equal(out, out_t)) << "forward";
  ++tally.forward;

  // Backward.
  Shape grad_shape = c.index_shape;
  grad_shape.push_back(c.dim);
  const Tensor grad = random_values(rng, grad_shape, c.weight_dtype, true);
  const torch::Tensor grad_t = to_torch(grad);
  const Tensor dense =
      embedding_dense_backward(grad, ids, c.num, c.padding_idx, c.scale_grad_by_freq);
  const torch::Tensor dense_t =
      at::embedding_dense_backward(grad_t, ids_t, c.num, pad, c.scale_grad_by_freq);
  ASSERT_TRUE(bitwise_equal(dense, dense_t)) << "dense backward";
  ++tally.dense;

  const SparseGrad sparse =
      embedding_sparse_backward(grad, ids, c.num, c.padding_idx, c.scale_grad_by_freq);
  torch::Tensor sparse_grad_t = grad_t;
  if (c.scale_grad_by_freq) {
    // §7 / pytorch#189720: PyTorch refuses sgf with sparse gradients; emb computes it as the
    // sparse gradient of grad_output[i] * (dtype)(1 / count[ids[i]]), which torch can check.
    EXPECT_THROW(at::embedding_sparse_backward(grad_t, ids_t, c.num, pad, true), c10::Error);
    const torch::Tensor flat = ids_t.reshape({-1}).to(at::kLong);
    const torch::Tensor counts = at::bincount(flat, {}, c.num).to(at::kDouble);
    const torch::Tensor alpha = (1.0 / counts).to(grad_t.scalar_type()).index_select(0, flat);
    sparse_grad_t = grad_t * alpha.reshape(ids_t.sizes().vec()).unsqueeze(-1);
    ++tally.sparse_sgf_divergence;
  }
  torch::Tensor sparse_ids_t = ids_t;
  if (ids.dim() == 0 && pad != -1) {
    // PyTorch 1.13 cannot mask a 0-d index ("too many indices for tensor of dimension 0");
    // emb treats it as the one-element index it is. Compare with torch on that form.
    EXPECT_THROW(at::embedding_sparse_backward(sparse_grad_t, ids_t, c.num, pad, false),
                 c10::Error);
    sparse_ids_t = ids_t.reshape({1});
    sparse_grad_t = sparse_grad_t.reshape({1, c.dim});
    ++tally.sparse_0d_padding_divergence;
  }
  const torch::Tensor sparse_t =
      at::embedding_sparse_backward(sparse_grad_t, sparse_ids_t, c.num, pad, false);
  ASSERT_TRUE(bitwise_equal(sparse.indices(), sparse_t._indices().reshape({-1}))) << "sparse ids";
  ASSERT_TRUE(bitwise_equal(sparse.values(), sparse_t._values())) << "sparse values";
  ASSERT_EQ(sparse.is_coalesced(), sparse_t.is_coalesced());
  // Coalescing sums duplicates. emb sums them in input order; torch in the order of its unstable
  // sort (which keeps input order only up to 16 entries). Fed ATen's order (the permutation of
  // torch's sort of the ids, the sort coalesce() runs), emb's sums are bitwise torch's; in input
  // order they are within the rounding bound of the sum.
  const SparseGrad coalesced = sparse.coalesce();
  const torch::Tensor coalesced_t = sparse_t.coalesce();
  ASSERT_TRUE(bitwise_equal(coalesced.indices(), coalesced_t._indices().reshape({-1})));
  const torch::Tensor flat_ids_t = sparse_t._indices().reshape({-1});
  const torch::Tensor perm = std::get<1>(flat_ids_t.sort());
  const SparseGrad aten_order(from_torch(flat_ids_t.index_select(0, perm)),
                              from_torch(sparse_t._values().index_select(0, perm)), c.num);
  ASSERT_TRUE(bitwise_equal(aten_order.coalesce().values(), coalesced_t._values()))
      << "coalesced in ATen's order";
  ++tally.coalesce_aten_order;
  {
    std::map<std::int64_t, std::int64_t> seen;
    std::int64_t most = 0;
    for (std::int64_t j = 0; j < sparse.nnz(); ++j)
      most = std::max(most, ++seen[sparse.indices().data<std::int64_t>()[j]]);
    if (most > 16) ++tally.coalesce_many_duplicates;
  }
  if (!bitwise_equal(coalesced.values(), coalesced_t._values()))
    ++tally.coalesce_input_order_differs;
  const Tensor values64 = sparse.values().to(DType::kFloat64);
  const Tensor abs64 = values64.clone();
  for (std::int64_t i = 0; i < abs64.numel(); ++i)
    abs64.set_double(i, std::abs(abs64.get_double(i)));
  ASSERT_TRUE(within_rounding(coalesced.values(),
                              SparseGrad(sparse.indices(), values64, c.num).coalesce().values(),
                              SparseGrad(sparse.indices(), abs64, c.num).coalesce().values()));
  ++tally.sparse;
}

TEST(EmbeddingParity, RandomizedConfigurations) {
  std::mt19937_64 rng(20261129);
  Tally tally;
  constexpr int kConfigs = 1500;
  for (int i = 0; i < kConfigs; ++i) {
    const Config c = random_config(rng);
    SCOPED_TRACE("config #" + std::to_string(i));
    run_config(rng, c, tally);
    if (HasFatalFailure()) return;
    ++tally.configs;
  }
  std::printf(
      "parity: %d randomized configurations: %d forward, %d renorm (%d bitwise against torch, %d "
      "with max_norm = a row's exact norm), %d dense backward, %d sparse backward; divergences "
      "asserted: %d sparse+sgf, %d sparse 0-d index with padding_idx (PyTorch raises, emb "
      "computes)\n",
      tally.configs, tally.forward, tally.renorm, tally.renorm_bitwise, tally.renorm_at_boundary,
      tally.dense, tally.sparse, tally.sparse_sgf_divergence, tally.sparse_0d_padding_divergence);
  std::printf(
      "parity: norm_type: %d renorms with a norm_type that is no float32 value compared bitwise "
      "with torch given the float-rounded p; %d where 1.13's narrowing changes the kernel or the "
      "exponent, checked bitwise against 2.x's generic kernel (1.13 differs in %d)\n",
      tally.renorm_non_float_p, tally.renorm_special_p, tally.renorm_13_differs);
  std::printf(
      "parity: order: %d coalesced sparse gradients bitwise in ATen's order (%d with more than 16 "
      "duplicates of an id; in input order %d differ, within the rounding bound)\n",
      tally.coalesce_aten_order, tally.coalesce_many_duplicates,
      tally.coalesce_input_order_differs);
  ::testing::Test::RecordProperty("renorm_bitwise", tally.renorm_bitwise);
  ::testing::Test::RecordProperty("renorm_non_float_p_bitwise", tally.renorm_non_float_p);
  ::testing::Test::RecordProperty("renorm_2x_generic_bitwise", tally.renorm_special_p);
  ::testing::Test::RecordProperty("coalesce_aten_order_bitwise", tally.coalesce_aten_order);
  EXPECT_EQ(tally.configs, kConfigs);
}

// ---------------------------------------------------------------------------------------------
// PyTorch's own Embedding tests (spec §4.1, marked A), against libtorch on the same inputs.

namespace F = torch::nn::functional;

Tensor ids64(std::vector<std::int64_t> v, Shape shape) {
  return Tensor::from_vector(v, shape);
}

// #1 (CPU, float and half): renorm with 4000 repeated indices equals torch's.
TEST(EmbeddingUpstream, MaxNormUnsortedRepeatingIndices) {
  for (DType dt : {DType::kFloat32, DType::kFloat16}) {
    std::mt19937_64 rng(1);
    Tensor weight = random_values(rng, {20, 64}, dt);
    torch::Tensor weight_t = to_torch(weight);
    std::vector<std::int64_t> v;
    for (int r = 0; r < 2000; ++r) v.insert(v.end(), {0, 1});
    const Tensor ids = ids64(v, {4000});
    const Tensor out = embedding(ids, weight, EmbeddingFuncOptions().max_norm(1.0));
    const torch::Tensor out_t =
        F::embedding(to_torch(ids), weight_t, F::EmbeddingFuncOptions().max_norm(1.0));
    EXPECT_TRUE(close_ulps(out, out_t, kRenormUlps));
  }
}

// #2, #20: the sparse gradient has the weight's shape, exact ids and values; two backwards
// concatenate (uncoalesced).
TEST(EmbeddingUpstream, SparseBasicAndBackward) {
  Embedding m(EmbeddingOptions(10, 20).sparse(true));
  torch::nn::Embedding mt(torch::nn::EmbeddingOptions(10, 20).sparse(true));
  mt->weight.data().copy_(to_torch(m.weight()));
  const Tensor input = ids64({0, 2, 4, 5, 4, 3, 0, 9}, {2, 4});
  std::mt19937_64 rng(2);
  const Tensor g1 = random_values(rng, {2, 4, 20}, DType::kFloat32);
  m.backward(input, g1);
  mt->forward(to_torch(input)).backward(to_torch(g1));
  const torch::Tensor gt = mt->weight.grad().clone();
  ASSERT_TRUE(gt.is_sparse());
  const SparseGrad& g = m.parameter().sparse_grad();
  EXPECT_EQ(g.num_rows(), 10);
  EXPECT_EQ(g.dim(), 20);
  EXPECT_TRUE(bitwise_equal(g.indices(), gt._indices().reshape({-1})));
  EXPECT_TRUE(bitwise_equal(g.values(), gt._values()));
  // Second backward with other ids: the gradients concatenate, uncoalesced, as .grad
  // accumulation does in Python (spec §1.6). libtorch's in-place accumulation can permute the
  // rows of a grad whose ids alias the input, so compare with the concatenation of torch's two
  // sparse gradients, and with the accumulated torch grad as a dense sum.
  const Tensor input2 = ids64({7, 1, 3}, {3});
  const Tensor g2 = random_values(rng, {3, 20}, DType::kFloat32);
  m.backward(input2, g2);
  const torch::Tensor second =
      at::embedding_sparse_backward(to_torch(g2), to_torch(input2), 10, -1, false);
  mt->forward(to_torch(input2)).backward(to_torch(g2));
  const SparseGrad& acc = m.parameter().sparse_grad();
  EXPECT_FALSE(acc.is_coalesced());
  EXPECT_FALSE(mt->weight.grad().is_coalesced());
  EXPECT_TRUE(bitwise_equal(acc.indices(),
                            torch::cat({gt._indices(), second._indices()}, 1).reshape({-1})));
  EXPECT_TRUE(bitwise_equal(acc.values(), torch::cat({gt._values(), second._values()}, 0)));
  EXPECT_TRUE(close_ulps(acc.to_dense(), mt->weight.grad().to_dense(), 1));
}

// #3: Embedding(0, 0) and Embedding(10, 0) give sparse grads of the weight's shape.
TEST(EmbeddingUpstream, SparseEmptyTensor) {
  for (auto [num, dim] : {std::pair<std::int64_t, std::int64_t>{0, 0}, {10, 0}}) {
    Embedding m(EmbeddingOptions(num, dim).sparse(true));
    const Tensor input = Tensor::empty({0}, DType::kInt64);
    const Tensor out = m(input);
    EXPECT_EQ(out.shape(), (Shape{0, dim}));
    m.backward(input, Tensor::empty({0, dim}, DType::kFloat32));
    const torch::Tensor gt =
        at::embedding_sparse_backward(torch::empty({0, dim}), to_torch(input), num, -1, false);
    const SparseGrad& g = m.parameter().sparse_grad();
    EXPECT_EQ(g.num_rows(), gt.size(0));
    EXPECT_EQ(g.dim(), gt.size(1));
    EXPECT_EQ(g.nnz(), gt._nnz());
    EXPECT_EQ(g.is_coalesced(), gt.is_coalesced());
  }
}

// #4 (dtype part): a half copy of a sparse module keeps its sizes and options.
TEST(EmbeddingUpstream, MoveSparseHalf) {
  Embedding m(EmbeddingOptions(10, 3).sparse(true));
  Embedding h(EmbeddingOptions(10, 3).sparse(true)._weight(m.weight().to(DType::kFloat16)));
  torch::nn::Embedding mt(torch::nn::EmbeddingOptions(10, 3).sparse(true));
  mt->weight.data().copy_(to_torch(m.weight()));
  mt->to(torch::kHalf);
  EXPECT_EQ(h.weight().dtype(), DType::kFloat16);
  EXPECT_EQ(h.weight().shape(), (Shape{10, 3}));
  EXPECT_TRUE(h.options().sparse());
  EXPECT_TRUE(bitwise_equal(h.weight(), mt->weight.data()));
}

// #5: duplicate ids give equal rows after renorm; every output norm <= max_norm.
TEST(EmbeddingUpstream, MaxNorm) {
  Embedding m(EmbeddingOptions(22, 5).max_norm(1.0));
  torch::nn::Embedding mt(torch::nn::EmbeddingOptions(22, 5).max_norm(1.0));
  mt->weight.data().copy_(to_torch(m.weight()));
  const Tensor input = ids64({2, 8, 8, 6}, {4});
  const Tensor out = m(input);
  torch::NoGradGuard no_grad;
  const torch::Tensor out_t =
      at::embedding(at::embedding_renorm_(mt->weight, to_torch(input), 1.0, 2.0), to_torch(input));
  EXPECT_TRUE(close_ulps(out, out_t, kRenormUlps));
  EXPECT_TRUE(out.select(1).equal(out.select(2)));
  for (std::int64_t r = 0; r < 4; ++r) {
    double sq = 0;
    for (std::int64_t d = 0; d < 5; ++d) sq += out.at<float>(r, d) * out.at<float>(r, d);
    EXPECT_LE(std::sqrt(sq), 1.0 + 1e-6);  // max_norm / (norm + 1e-7) * norm, up to fp32 rounding
  }
}

// #8: from_pretrained keeps the given padding row (it is not zeroed).
TEST(EmbeddingUpstream, FromPretrainedPaddingIdx) {
  const Tensor w = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Embedding m = Embedding::from_pretrained(w, EmbeddingFromPretrainedOptions().padding_idx(1));
  torch::nn::Embedding mt = torch::nn::Embedding::from_pretrained(
      to_torch(w), torch::nn::EmbeddingFromPretrainedOptions().padding_idx(1));
  EXPECT_TRUE(bitwise_equal(m.weight(), mt->weight.data()));
  EXPECT_EQ(m.weight().at<float>(1, 2), 6.0f);
}

// #10: max_norm=2, norm_type=0.5, sparse: the output equals the renormed (shared) input, norms
// <= 2.
TEST(EmbeddingUpstream, FromPretrainedOptions) {
  const Tensor a = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Embedding m = Embedding::from_pretrained(
      a, EmbeddingFromPretrainedOptions().max_norm(2.0).norm_type(0.5).sparse(true));
  const Tensor out = m(ids64({0, 1}, {2}));
  EXPECT_TRUE(out.equal(a));  // shared storage: a itself was renormed
  EXPECT_TRUE(m.weight().shares_storage_with(a));
  torch::Tensor at_ = to_torch(Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3}));
  at::embedding_renorm_(at_, torch::tensor({0, 1}), 2.0, 0.5);
  EXPECT_TRUE(close_ulps(a, at_, kRenormUlps));
  for (std::int64_t r = 0; r < 2; ++r) {
    double s = 0;
    for (std::int64_t d = 0; d < 3; ++d) s += std::sqrt(std::abs(a.at<float>(r, d)));
    EXPECT_LE(s * s, 2.0 + 1e-5);
  }
}

// #11: module == functional, with and without padding_idx.
TEST(EmbeddingUpstream, Functional) {
  for (std::optional<std::int64_t> pad :
       {std::optional<std::int64_t>{}, std::optional<std::int64_t>{2}}) {
    Embedding m(EmbeddingOptions(4, 3).padding_idx(pad));
    const Tensor input = ids64({0, 2, 1, 3, 2, 2}, {2, 3});
    const Tensor res1 = m(input);
    const Tensor res2 = embedding(input, m.weight(), EmbeddingFuncOptions().padding_idx(pad));
    F::EmbeddingFuncOptions opts;
    if (pad) opts.padding_idx(*pad);
    const torch::Tensor res_t = F::embedding(to_torch(input), to_torch(m.weight()), opts);
    EXPECT_TRUE(res1.equal(res2));
    EXPECT_TRUE(bitwise_equal(res1, res_t));
  }
}

// #18: the dense gradient is the derivative (central differences in float64), and equals torch's.
TEST(EmbeddingUpstream, DenseGradCheck) {
  std::mt19937_64 rng(18);
  const Tensor weight = random_values(rng, {10, 4}, DType::kFloat64);
  const Tensor input = ids64({1, 3, 3, 9, 0, 1}, {2, 3});
  const Tensor v = random_values(rng, {2, 3, 4}, DType::kFloat64);  // loss = sum(out * v)
  auto loss = [&](const Tensor& w) {
    const Tensor out = embedding(input, w);
    double s = 0;
    for (std::int64_t i = 0; i < out.numel(); ++i) s += out.get_double(i) * v.get_double(i);
    return s;
  };
  const Tensor grad = embedding_dense_backward(v, input, 10, std::nullopt, false);
  for (std::int64_t i = 0; i < weight.numel(); ++i) {
    const double w0 = weight.get_double(i);
    Tensor wp = weight.clone(), wm = weight.clone();
    wp.set_double(i, w0 + 1e-6);
    wm.set_double(i, w0 - 1e-6);
    EXPECT_NEAR((loss(wp) - loss(wm)) / 2e-6, grad.get_double(i), 1e-7) << "element " << i;
  }
  torch::Tensor w_t = to_torch(weight).requires_grad_(true);
  (at::embedding(w_t, to_torch(input)) * to_torch(v)).sum().backward();
  EXPECT_TRUE(bitwise_equal(grad, w_t.grad()));
}

// #19: 0-d and 3-d weights are rejected by both.
TEST(EmbeddingUpstream, ScalarWeightError) {
  const Tensor input = ids64({0, 1}, {2});
  for (const Shape& shape : {Shape{}, Shape{1, 1, 1}}) {
    const Tensor w = Tensor::zeros(shape, DType::kFloat32);
    EXPECT_THROW(embedding(input, w), ValueError);
    EXPECT_THROW(at::embedding(to_torch(w), to_torch(input)), c10::Error);
  }
}

// #21: the gradient ignores the renorm: per-row counts [1, 1, 2, 0] for input [0, 1, 2, 2].
TEST(EmbeddingUpstream, MaxNormBackward) {
  Embedding m(EmbeddingOptions(4, 3).max_norm(1.0));
  const Tensor input = ids64({0, 1, 2, 2}, {4});
  m(input);
  m.backward(input, Tensor::full({4, 3}, 1.0, DType::kFloat32));
  const Tensor& g = m.parameter().grad();
  const float expected[] = {1, 1, 2, 0};
  for (std::int64_t r = 0; r < 4; ++r) {
    for (std::int64_t d = 0; d < 3; ++d) EXPECT_EQ(g.at<float>(r, d), expected[r]);
  }
  torch::Tensor w_t = to_torch(m.weight()).requires_grad_(true);
  F::embedding(to_torch(input), w_t, F::EmbeddingFuncOptions().max_norm(1.0)).sum().backward();
  EXPECT_TRUE(bitwise_equal(g, w_t.grad()));
}

// #23: padding rows of fresh modules are zero, negative padding_idx wraps, a custom padding
// vector is returned as is, out-of-range padding_idx is an error, and the padding row gets no
// gradient (n = 1, 2, 1000 occurrences).
TEST(EmbeddingUpstream, PaddingIdx) {
  Embedding m(EmbeddingOptions(10, 20).padding_idx(0));
  const Tensor out = m(ids64({0, 0, 0, 0, 0, 0, 0, 0, 2, 4, 4, 0}, {4, 3}));
  for (std::int64_t d = 0; d < 20; ++d) EXPECT_EQ(out.at<float>(0, 0, d), 0.0f);

  Embedding neg(EmbeddingOptions(10, 20).padding_idx(-2));
  EXPECT_EQ(*neg.padding_idx(), 8);
  torch::nn::Embedding neg_t(torch::nn::EmbeddingOptions(10, 20).padding_idx(-2));
  EXPECT_EQ(*neg_t->options.padding_idx(), 8);
  const Tensor out8 = neg(ids64({8}, {1}));
  for (std::int64_t d = 0; d < 20; ++d) EXPECT_EQ(out8.at<float>(0, d), 0.0f);

  // custom padding vector
  neg.weight().select(8).fill_(3.0);
  EXPECT_EQ(neg(ids64({8}, {1})).at<float>(0, 5), 3.0f);

  EXPECT_THROW(Embedding(EmbeddingOptions(10, 20).padding_idx(25)), IndexError);
  EXPECT_THROW(Embedding(EmbeddingOptions(10, 20).padding_idx(-25)), IndexError);
  EXPECT_THROW(torch::nn::Embedding(torch::nn::EmbeddingOptions(10, 20).padding_idx(25)),
               c10::Error);
  EXPECT_THROW(torch::nn::Embedding(torch::nn::EmbeddingOptions(10, 20).padding_idx(-25)),
               c10::Error);

  for (std::int64_t n : {1, 2, 1000}) {
    for (bool sparse : {false, true}) {
      Embedding e(EmbeddingOptions(10, 3).padding_idx(2).sparse(sparse));
      std::vector<std::int64_t> v(static_cast<std::size_t>(n), 2);
      v.push_back(4);
      const Tensor input = ids64(v, {n + 1});
      e.backward(input, Tensor::full({n + 1, 3}, 1.0, DType::kFloat32));
      const Tensor g = sparse ? e.parameter().sparse_grad().to_dense() : e.parameter().grad();
      for (std::int64_t d = 0; d < 3; ++d) {
        EXPECT_EQ(g.at<float>(2, d), 0.0f);
        EXPECT_EQ(g.at<float>(4, d), 1.0f);
      }
    }
  }
}

// ModuleInfo / common_nn module tests: Embedding(4, 3) with a (2, 3) input, and the
// "discontiguous" (1, 512) -> expand(7, 512) input (materialized: emb tensors are contiguous).
TEST(EmbeddingUpstream, ModuleTests) {
  std::mt19937_64 rng(4);
  Embedding m(EmbeddingOptions(4, 3));
  Config c;
  c.num = 4;
  c.index_shape = {2, 3};
  const Tensor input = random_indices(rng, c);
  const torch::Tensor w_t = to_torch(m.weight()).requires_grad_(true);
  const Tensor out = m(input);
  const torch::Tensor out_t = at::embedding(w_t, to_torch(input));
  EXPECT_TRUE(bitwise_equal(out, out_t));
  const Tensor g = random_values(rng, {2, 3, 3}, DType::kFloat32);
  m.backward(input, g);
  out_t.backward(to_torch(g));
  EXPECT_TRUE(bitwise_equal(m.parameter().grad(), w_t.grad()));

  const torch::Tensor row = torch::randint(0, 4, {1, 512}, torch::kLong);
  const torch::Tensor expanded = row.expand({7, 512});
  const Tensor ids = from_torch(expanded);
  EXPECT_TRUE(
      bitwise_equal(embedding(ids, m.weight()), at::embedding(to_torch(m.weight()), expanded)));
}

// OpInfo samples: 0-d, 1-d, 2-d indices; padding_idx 2 and -1; max_norm; max_norm + norm_type 1;
// scale_grad_by_freq (forward and dense backward against torch).
TEST(EmbeddingUpstream, OpInfoSamples) {
  std::mt19937_64 rng(5);
  const Tensor weight = random_values(rng, {5, 5}, DType::kFloat64);
  const std::vector<Tensor> inputs = {ids64({2}, {}), ids64({0, 3, 3, 1}, {4}),
                                      ids64({0, 1, 2, 3, 4, 4}, {2, 3})};
  struct Sample {
    std::optional<std::int64_t> pad;
    std::optional<double> max_norm;
    double p;
    bool sgf;
  };
  const std::vector<Sample> samples = {{{}, {}, 2, false},  {2, {}, 2, false},   {-1, {}, 2, false},
                                       {{}, 1.0, 2, false}, {{}, 1.0, 1, false}, {{}, {}, 2, true}};
  for (const Tensor& input : inputs) {
    for (const Sample& s : samples) {
      const Tensor w = weight.clone();
      torch::Tensor w_t = to_torch(weight);
      const Tensor out = embedding(
          input, w, EmbeddingFuncOptions().padding_idx(s.pad).max_norm(s.max_norm).norm_type(s.p));
      if (s.max_norm) at::embedding_renorm_(w_t, to_torch(input), *s.max_norm, s.p);
      const std::int64_t pad = s.pad ? (*s.pad + 5) % 5 : -1;
      EXPECT_TRUE(bitwise_equal(out, at::embedding(w_t, to_torch(input), pad, s.sgf)));
      Shape gs = input.shape();
      gs.push_back(5);
      const Tensor g = random_values(rng, gs, DType::kFloat64);
      EXPECT_TRUE(
          bitwise_equal(embedding_dense_backward(g, input, 5, s.pad, s.sgf),
                        at::embedding_dense_backward(to_torch(g), to_torch(input), 5, pad, s.sgf)));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Known differences of the 1.13 oracle (spec §7), asserted as differences.

// 2.x (and emb) load integer tables with from_pretrained (frozen); 1.13 raises.
TEST(EmbeddingDivergence, FromPretrainedIntegerWeights) {
  const Tensor w = Tensor::from_vector<std::int64_t>({1, 2, 3, 4, 5, 6}, {3, 2});
  Embedding m = Embedding::from_pretrained(w);
  EXPECT_FALSE(m.parameter().requires_grad());
  const Tensor out = m(ids64({2, 0}, {2}));
  EXPECT_EQ(out.at<std::int64_t>(0, 1), 6);
  EXPECT_EQ(out.at<std::int64_t>(1, 0), 1);
  EXPECT_THROW(torch::nn::Embedding::from_pretrained(to_torch(w)), c10::Error);
}

// libtorch's F::embedding narrows max_norm to float; ATen (and Python, and emb) keep the double.
TEST(EmbeddingDivergence, LibtorchFunctionalNarrowsMaxNorm) {
  const Tensor w = Tensor::from_vector<double>({3, 4}, {1, 2});
  embedding(ids64({0}, {1}), w, EmbeddingFuncOptions().max_norm(0.1));
  torch::Tensor w_aten = torch::tensor({{3.0, 4.0}}, torch::kDouble);
  at::embedding_renorm_(w_aten, torch::tensor({0}), 0.1, 2.0);
  torch::Tensor w_cpp = torch::tensor({{3.0, 4.0}}, torch::kDouble);
  F::embedding(torch::tensor({0}), w_cpp, F::EmbeddingFuncOptions().max_norm(0.1));
  EXPECT_TRUE(bitwise_equal(w, w_aten));
  EXPECT_EQ(w.at<double>(0, 0), 0.059999998800000023);
  EXPECT_EQ(w_cpp[0][0].item<double>(), 0.059999999694069675);
  EXPECT_FALSE(bitwise_equal(w, w_cpp));
}

// PyTorch 1.13 narrows norm_type to float before it picks the norm kernel; 2.x (and emb) keep
// the double. A norm_type that rounds to a special float picks another kernel in 1.13: 1e39 is
// the max kernel there (float inf), the generic one with p = inf in 2.x (norm 1); 1e-50 is the
// count of non-zeros there, the generic one with p = 0 in 2.x (|x|^0 = 1, then ^(1/0): inf);
// 1.9999999999 is the 2-norm there, (3^p + 4^p)^(1/p) > 5 in 2.x. Given the float-rounded p,
// emb does what 1.13 does.
TEST(EmbeddingDivergence, NormTypeNarrowedToFloatIn113) {
  struct Case {
    DType dtype;
    double p, max_norm;
    bool renormed_in_2x, renormed_in_113;
  };
  for (const Case& k : {Case{DType::kFloat32, 1e39, 3.0, false, true},
                        Case{DType::kFloat32, 1e-50, 3.0, true, false},
                        Case{DType::kFloat64, 1e-50, 3.0, true, false},
                        Case{DType::kFloat64, 1.9999999999, 5.0, true, false}}) {
    SCOPED_TRACE(std::string(dtype_name(k.dtype)) + " p=" + std::to_string(k.p));
    const Tensor w = Tensor::from_vector<double>({3, 4}, {1, 2}).to(k.dtype);
    const Tensor before = w.clone();
    embedding_renorm_(w, ids64({0}, {1}), k.max_norm, k.p);
    torch::Tensor w_t = to_torch(before);
    at::embedding_renorm_(w_t, torch::tensor({0}), k.max_norm, k.p);
    EXPECT_EQ(!w.equal(before), k.renormed_in_2x);
    EXPECT_EQ(!bitwise_equal(before, w_t), k.renormed_in_113);
    if (k.p == 1e-50) {
      EXPECT_EQ(w.get_double(1), 0.0);  // norm inf: scale 0
    }
    const Tensor w32 = before.clone();
    embedding_renorm_(w32, ids64({0}, {1}), k.max_norm, static_cast<float>(k.p));
    EXPECT_TRUE(bitwise_equal(w32, w_t));
  }
}

// PyTorch (1.13 and 2.x) refuses scale_grad_by_freq with sparse gradients (pytorch#189720); emb
// gives the sparse form of the dense sgf gradient.
TEST(EmbeddingDivergence, SparseScaleGradByFreq) {
  const Tensor input = ids64({1, 1, 3, 1}, {4});
  const Tensor g = Tensor::full({4, 2}, 1.0, DType::kFloat32);
  EXPECT_THROW(at::embedding_sparse_backward(to_torch(g), to_torch(input), 5, -1, true),
               c10::Error);
  const Tensor dense = embedding_sparse_backward(g, input, 5, std::nullopt, true).to_dense();
  EXPECT_TRUE(close_ulps(
      dense, at::embedding_dense_backward(to_torch(g), to_torch(input), 5, -1, true), 1));
  EXPECT_EQ(dense.at<float>(1, 0), 1.0f);  // three times 1/3
  EXPECT_EQ(dense.at<float>(3, 1), 1.0f);
}

}  // namespace
}  // namespace emb
