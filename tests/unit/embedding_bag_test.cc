// EmbeddingBag: forward in every mode, the auxiliaries, both backward passes, per_sample_weights,
// the numerics the spec fixes (accumulation order, true division, FMA, fp32 accumulation of
// 16-bit types), and the module.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "emb/emb.h"

namespace {

using emb::DType;
using emb::EmbeddingBag;
using emb::EmbeddingBagFuncOptions;
using emb::EmbeddingBagMode;
using emb::EmbeddingBagOptions;
using emb::Tensor;

constexpr EmbeddingBagMode kSum = EmbeddingBagMode::kSum;
constexpr EmbeddingBagMode kMean = EmbeddingBagMode::kMean;
constexpr EmbeddingBagMode kMax = EmbeddingBagMode::kMax;

Tensor longs(std::vector<std::int64_t> v) {
  const auto n = static_cast<std::int64_t>(v.size());
  return Tensor::from_vector<std::int64_t>(v, {n});
}
Tensor ints(std::vector<std::int32_t> v) {
  const auto n = static_cast<std::int64_t>(v.size());
  return Tensor::from_vector<std::int32_t>(v, {n});
}
Tensor floats(std::vector<float> v, emb::Shape shape) {
  return Tensor::from_vector<float>(v, shape);
}

std::vector<double> values(const Tensor& t) {
  std::vector<double> out(static_cast<std::size_t>(t.numel()));
  for (std::int64_t i = 0; i < t.numel(); ++i) out[static_cast<std::size_t>(i)] = t.get_double(i);
  return out;
}

// The spec's worked example: row k = [2k + 1, 2k + 2], 5 rows.
Tensor example_weight(DType dtype = DType::kFloat32) {
  Tensor w = Tensor::empty({5, 2}, dtype);
  for (int k = 0; k < 5; ++k) {
    w.set_double(2 * k, 2 * k + 1);
    w.set_double(2 * k + 1, 2 * k + 2);
  }
  return w;
}
const std::vector<std::int64_t> kExampleInput = {3, 1, 1, 1, 4, 0};
const std::vector<std::int64_t> kExampleOffsets = {0, 0, 3, 3, 6};  // bags 0, 2, 4 empty
Tensor example_grad() {
  return floats({99, 99, 1, 2, 99, 99, 3, 4, 99, 99}, {5, 2});
}

EmbeddingBagFuncOptions opts(EmbeddingBagMode mode) {
  return EmbeddingBagFuncOptions().mode(mode);
}

// --- forward: the spec's table ------------------------------------------------------------------

TEST(EmbeddingBagForward, SumOfTheExample) {
  auto r = emb::embedding_bag_forward(longs(kExampleInput), example_weight(),
                                      longs(kExampleOffsets), opts(kSum));
  EXPECT_EQ(r.output.shape(), (emb::Shape{5, 2}));
  EXPECT_EQ(values(r.output), (std::vector<double>{0, 0, 13, 16, 0, 0, 13, 16, 0, 0}));
  EXPECT_EQ(values(r.offset2bag), (std::vector<double>{1, 1, 1, 3, 3, 3}));
  EXPECT_EQ(values(r.bag_size), (std::vector<double>{0, 3, 0, 3, 0}));
  EXPECT_FALSE(r.max_indices.defined());
  EXPECT_EQ(r.offset2bag.dtype(), DType::kInt64);
}

TEST(EmbeddingBagForward, SumWithPaddingSkipsThePaddingRow) {
  auto r = emb::embedding_bag_forward(longs(kExampleInput), example_weight(),
                                      longs(kExampleOffsets), opts(kSum).padding_idx(1));
  EXPECT_EQ(values(r.output), (std::vector<double>{0, 0, 7, 8, 0, 0, 10, 12, 0, 0}));
  EXPECT_EQ(values(r.bag_size), (std::vector<double>{0, 1, 0, 2, 0}));
}

TEST(EmbeddingBagForward, MeanDividesByTheNonPaddingCount) {
  auto r = emb::embedding_bag_forward(longs(kExampleInput), example_weight(),
                                      longs(kExampleOffsets), opts(kMean));
  EXPECT_EQ(values(r.output),
            (std::vector<double>{0, 0, 13.0f / 3, 16.0f / 3, 0, 0, 13.0f / 3, 16.0f / 3, 0, 0}));
  auto p = emb::embedding_bag(longs(kExampleInput), example_weight(), longs(kExampleOffsets),
                              opts(kMean).padding_idx(-4));  // -4 -> row 1
  EXPECT_EQ(values(p), (std::vector<double>{0, 0, 7, 8, 0, 0, 5, 6, 0, 0}));
}

TEST(EmbeddingBagForward, MaxGivesTheWinningRows) {
  for (std::optional<std::int64_t> pad :
       {std::optional<std::int64_t>(), std::optional<std::int64_t>(1)}) {
    auto r = emb::embedding_bag_forward(longs(kExampleInput), example_weight(),
                                        longs(kExampleOffsets), opts(kMax).padding_idx(pad));
    EXPECT_EQ(values(r.output), (std::vector<double>{0, 0, 7, 8, 0, 0, 9, 10, 0, 0}));
    EXPECT_EQ(r.max_indices.shape(), (emb::Shape{5, 2}));
    EXPECT_EQ(values(r.max_indices), (std::vector<double>{0, 0, 3, 3, 0, 0, 4, 4, 0, 0}));
    EXPECT_EQ(values(r.bag_size),
              pad ? (std::vector<double>{0, 1, 0, 2, 0}) : (std::vector<double>{0, 3, 0, 3, 0}));
  }
}

TEST(EmbeddingBagForward, MaxTiesFirstWinsAndNaNOnlyWhenFirst) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // rows: 0 = [1, nan], 1 = [1, 2], 2 = [nan, 5]
  Tensor w = floats({1, nan, 1, 2, nan, 5}, {3, 2});
  auto r = emb::embedding_bag_forward(longs({1, 0, 2, 2, 0}), w, longs({0, 3}), opts(kMax));
  // bag 0 = ids [1, 0, 2]: col 0 tie 1 vs 1 -> row 1 (first), NaN later ignored; col 1: 2, NaN
  // ignored, 5 wins -> row 2.
  EXPECT_EQ(r.output.at<float>(0, 0), 1.0f);
  EXPECT_EQ(r.max_indices.at<std::int64_t>(0, 0), 1);
  EXPECT_EQ(r.output.at<float>(0, 1), 5.0f);
  EXPECT_EQ(r.max_indices.at<std::int64_t>(0, 1), 2);
  // bag 1 = ids [2, 0]: col 0 NaN first -> sticks; col 1: 5 then NaN -> 5.
  EXPECT_TRUE(std::isnan(r.output.at<float>(1, 0)));
  EXPECT_EQ(r.max_indices.at<std::int64_t>(1, 0), 2);
  EXPECT_EQ(r.output.at<float>(1, 1), 5.0f);
}

TEST(EmbeddingBagForward, TwoDInputIsFixedLengthBags) {
  Tensor w = example_weight();
  Tensor two_d = Tensor::from_vector<std::int32_t>({3, 1, 1, 1, 4, 0}, {2, 3});
  for (auto mode : {kSum, kMean, kMax}) {
    Tensor a = emb::embedding_bag(two_d, w, {}, opts(mode));
    Tensor b = emb::embedding_bag(longs(kExampleInput), w, longs({0, 3}), opts(mode));
    EXPECT_TRUE(a.equal(b)) << emb::mode_name(mode);
    // include_last_offset does not apply to 2-D input (PyTorch 2.x; 1.13 dropped the last bag).
    Tensor c = emb::embedding_bag(two_d, w, {}, opts(mode).include_last_offset(true));
    EXPECT_TRUE(a.equal(c)) << emb::mode_name(mode);
  }
}

TEST(EmbeddingBagForward, IncludeLastOffsetClosesTheLastBag) {
  Tensor w = example_weight();
  Tensor a = emb::embedding_bag(longs(kExampleInput), w, longs({0, 0, 3, 3, 6}),
                                opts(kSum).include_last_offset(true));
  EXPECT_EQ(a.shape(), (emb::Shape{4, 2}));
  EXPECT_EQ(values(a), (std::vector<double>{0, 0, 13, 16, 0, 0, 13, 16}));
  Tensor one = emb::embedding_bag(longs({}), w, longs({0}), opts(kMean).include_last_offset(true));
  EXPECT_EQ(one.shape(), (emb::Shape{0, 2}));
}

TEST(EmbeddingBagForward, MixedIndexDtypes) {
  Tensor w = example_weight();
  Tensor ref = emb::embedding_bag(longs(kExampleInput), w, longs(kExampleOffsets), opts(kMean));
  Tensor a = emb::embedding_bag(ints({3, 1, 1, 1, 4, 0}), w, longs(kExampleOffsets), opts(kMean));
  Tensor b = emb::embedding_bag(longs(kExampleInput), w, ints({0, 0, 3, 3, 6}), opts(kMean));
  EXPECT_TRUE(ref.equal(a));
  EXPECT_TRUE(ref.equal(b));
}

TEST(EmbeddingBagForward, EmptyInputGivesZeros) {
  Tensor w = example_weight();
  for (auto mode : {kSum, kMean, kMax}) {
    for (const Tensor& off : {longs({0}), longs({0, 0}), ints({0, 0})}) {
      Tensor out = emb::embedding_bag(ints({}), w, off, opts(mode));
      EXPECT_EQ(out.shape(), (emb::Shape{off.numel(), 2}));
      for (double v : values(out)) EXPECT_EQ(v, 0.0);
    }
    Tensor none = emb::embedding_bag(longs({}), w, longs({}), opts(mode));
    EXPECT_EQ(none.shape(), (emb::Shape{0, 2}));
  }
}

TEST(EmbeddingBagForward, AllPaddingBagsGiveZerosNotNaN) {
  Tensor w = example_weight();
  for (auto mode : {kSum, kMean, kMax}) {
    Tensor out = emb::embedding_bag(longs({2, 2, 3}), w, longs({0, 2}), opts(mode).padding_idx(2));
    EXPECT_EQ(out.at<float>(0, 0), 0.0f) << emb::mode_name(mode);
    EXPECT_EQ(out.at<float>(0, 1), 0.0f);
    EXPECT_EQ(out.at<float>(1, 0), 7.0f);
  }
}

// --- numerics ------------------------------------------------------------------------------------

TEST(EmbeddingBagNumerics, Float32SumIsSequentialInBagOrder) {
  Tensor w = floats({1e8f, 1.0f, -1e8f}, {3, 1});
  // ((1e8 + 1) + 1) - 1e8 in fp32 = 0 (each +1 is lost); a wider accumulator would give 2.
  Tensor out = emb::embedding_bag(longs({0, 1, 1, 2}), w, longs({0}), opts(kSum));
  EXPECT_EQ(out.at<float>(0, 0), 0.0f);
  Tensor reordered = emb::embedding_bag(longs({0, 2, 1, 1}), w, longs({0}), opts(kSum));
  EXPECT_EQ(reordered.at<float>(0, 0), 2.0f);
}

TEST(EmbeddingBagNumerics, MeanIsATrueDivision) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-3, 3);
  int differs_from_reciprocal = 0;
  for (int t = 0; t < 200; ++t) {
    std::vector<float> v = {u(rng), u(rng), u(rng)};
    Tensor out = emb::embedding_bag(longs({0, 1, 2}), floats(v, {3, 1}), longs({0}), opts(kMean));
    const float sum = (v[0] + v[1]) + v[2];
    EXPECT_EQ(out.at<float>(0, 0), sum / 3.0f);
    differs_from_reciprocal += sum / 3.0f != sum * (1.0f / 3.0f);
  }
  EXPECT_GT(differs_from_reciprocal, 0);  // the test can tell division from a reciprocal
}

TEST(EmbeddingBagNumerics, PerSampleWeightsAreAnFmaChain) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-2, 2);
  int differs_from_mul_add = 0;
  for (int t = 0; t < 200; ++t) {
    std::vector<float> w = {u(rng), u(rng), u(rng)}, p = {u(rng), u(rng), u(rng)};
    Tensor out = emb::embedding_bag(longs({0, 1, 2}), floats(w, {3, 1}), longs({0}), opts(kSum),
                                    floats(p, {3}));
    float acc = 0;
    volatile float mul_add = 0;  // no contraction
    for (int i = 0; i < 3; ++i) {
      acc = std::fma(w[i], p[i], acc);
      volatile float prod = w[i] * p[i];
      mul_add = mul_add + prod;
    }
    EXPECT_EQ(out.at<float>(0, 0), acc);
    differs_from_mul_add += acc != mul_add;
  }
  EXPECT_GT(differs_from_mul_add, 0);
}

TEST(EmbeddingBagNumerics, SixteenBitTypesAccumulateInFloat32) {
  // 2048 + 1 + 1: half steps give 2048 (each 2049 rounds to even), fp32 then one rounding 2050.
  for (DType dt : {DType::kFloat16, DType::kBFloat16}) {
    const double big = dt == DType::kFloat16 ? 2048 : 256;  // bfloat16 has 8 significant bits
    Tensor w = Tensor::empty({2, 1}, dt);
    w.set_double(0, big);
    w.set_double(1, 1);
    Tensor out = emb::embedding_bag(longs({0, 1, 1}), w, longs({0}), opts(kSum));
    EXPECT_EQ(out.dtype(), dt);
    EXPECT_EQ(out.get_double(0), big + 2) << emb::dtype_name(dt);
    Tensor mean = emb::embedding_bag(longs({0, 1, 1}), w, longs({0}), opts(kMean));
    const float expect = dt == DType::kFloat16 ? float(emb::Half(float(big + 2) / 3.0f))
                                               : float(emb::BFloat16(float(big + 2) / 3.0f));
    EXPECT_EQ(mean.get_double(0), expect);
  }
}

TEST(EmbeddingBagNumerics, Float64AccumulatesInFloat64) {
  Tensor w = Tensor::from_vector<double>({1e16, 1.0}, {2, 1});
  Tensor out = emb::embedding_bag(longs({1, 1, 0}), w, longs({0}), opts(kSum));
  EXPECT_EQ(out.at<double>(0, 0), (1.0 + 1.0) + 1e16);
}

// --- max_norm
// -------------------------------------------------------------------------------------

TEST(EmbeddingBagMaxNorm, RenormsTheLookedUpRowsBeforePooling) {
  Tensor w = Tensor::from_vector<double>({3, 4, 0.3, 0.4, 6, 8}, {3, 2});
  Tensor out =
      emb::embedding_bag(longs({0, 2}), w, longs({0}), opts(kSum).max_norm(1.0).padding_idx(2));
  // Both rows are renormed (the padding row too), row 1 untouched; row 2 is excluded from the sum.
  EXPECT_NEAR(w.at<double>(0, 0), 0.6, 1e-7);
  EXPECT_NEAR(w.at<double>(2, 1), 0.8, 1e-7);
  EXPECT_EQ(w.at<double>(1, 0), 0.3);
  EXPECT_EQ(out.at<double>(0, 0), w.at<double>(0, 0));
}

// --- backward
// -------------------------------------------------------------------------------------

Tensor dense_grad(EmbeddingBagFuncOptions o, const Tensor& psw = {}) {
  Tensor w = example_weight();
  auto fwd = emb::embedding_bag_forward(longs(kExampleInput), w, longs(kExampleOffsets), o, psw);
  return emb::embedding_bag_dense_backward(example_grad(), longs(kExampleInput),
                                           longs(kExampleOffsets), fwd.max_indices, 5, o, psw);
}

TEST(EmbeddingBagBackward, DenseOfTheExample) {
  EXPECT_EQ(values(dense_grad(opts(kSum))), (std::vector<double>{3, 4, 5, 8, 0, 0, 1, 2, 3, 4}));
  const std::vector<double> mean = values(dense_grad(opts(kMean)));
  const std::vector<double> expect = {1, 4. / 3, 5. / 3, 8. / 3, 0, 0, 1. / 3, 2. / 3, 1, 4. / 3};
  for (std::size_t i = 0; i < expect.size(); ++i) EXPECT_NEAR(mean[i], expect[i], 2e-7) << i;
  EXPECT_EQ(values(dense_grad(opts(kMean).padding_idx(1))),
            (std::vector<double>{1.5, 2, 0, 0, 0, 0, 1, 2, 1.5, 2}));
  EXPECT_EQ(values(dense_grad(opts(kMax))), (std::vector<double>{0, 0, 0, 0, 0, 0, 1, 2, 3, 4}));
}

TEST(EmbeddingBagBackward, PerSampleWeightsOfTheExample) {
  Tensor psw = floats({0.5f, 2, -1, 3, 0.25f, 4}, {6});
  EXPECT_EQ(values(dense_grad(opts(kSum), psw)),
            (std::vector<double>{12, 16, 10, 14, 0, 0, 0.5, 1, 0.75, 1}));
  Tensor dpsw = emb::embedding_bag_per_sample_weights_backward(
      example_grad(), example_weight(), longs(kExampleInput), longs(kExampleOffsets), opts(kSum));
  EXPECT_EQ(values(dpsw), (std::vector<double>{23, 11, 11, 25, 67, 11}));
  Tensor padded = emb::embedding_bag_per_sample_weights_backward(
      example_grad(), example_weight(), longs(kExampleInput), longs(kExampleOffsets),
      opts(kSum).padding_idx(1));
  EXPECT_EQ(values(padded), (std::vector<double>{23, 0, 0, 0, 67, 11}));
}

TEST(EmbeddingBagBackward, SparseOfTheExample) {
  auto g = emb::embedding_bag_sparse_backward(example_grad(), longs(kExampleInput),
                                              longs(kExampleOffsets), 5, opts(kSum));
  EXPECT_EQ(values(g.indices()), (std::vector<double>{3, 1, 1, 1, 4, 0}));
  EXPECT_EQ(values(g.values()), (std::vector<double>{1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4}));
  EXPECT_FALSE(g.is_coalesced());
  auto m = emb::embedding_bag_sparse_backward(
      example_grad(), longs(kExampleInput), longs(kExampleOffsets), 5, opts(kMean).padding_idx(1));
  EXPECT_EQ(values(m.indices()), (std::vector<double>{3, 4, 0}));
  EXPECT_EQ(values(m.values()), (std::vector<double>{1, 2, 1.5, 2, 1.5, 2}));
  // Sparse and dense agree (up to mean's rounding, exact here).
  EXPECT_EQ(values(m.to_dense()), values(dense_grad(opts(kMean).padding_idx(1))));
}

TEST(EmbeddingBagBackward, ScaleGradByFreqUsesEachIdsOwnCount) {
  // pytorch#190063: PyTorch's CPU kernel gives row 1 the grad 1/3 (the count of row 0).
  Tensor ones = Tensor::full({2, 1}, 1.0, DType::kFloat32);
  auto o = opts(kSum).scale_grad_by_freq(true);
  Tensor g = emb::embedding_bag_dense_backward(ones, longs({0, 0, 0, 1}), longs({0, 2}), {}, 4, o);
  EXPECT_EQ(values(g), (std::vector<double>{1, 1, 0, 0}));
  Tensor g2 = emb::embedding_bag_dense_backward(ones, longs({3, 1, 1, 2}), longs({0, 2}), {}, 4, o);
  EXPECT_EQ(values(g2), (std::vector<double>{0, 1, 1, 1}));
  // Also with sparse gradients (PyTorch raises).
  auto s = emb::embedding_bag_sparse_backward(ones, longs({3, 1, 1, 2}), longs({0, 2}), 4, o);
  EXPECT_EQ(values(s.to_dense()), (std::vector<double>{0, 1, 1, 1}));
  EXPECT_EQ(values(s.values()), (std::vector<double>{1, 0.5, 0.5, 1}));
}

TEST(EmbeddingBagBackward, MaxGivesADuplicateIdTheGradientOnce) {
  Tensor w = floats({5, 1, 2, 3}, {2, 2});  // row 0 wins col 0, row 1 col 1
  auto fwd = emb::embedding_bag_forward(longs({0, 0, 1}), w, longs({0}), opts(kMax));
  Tensor g = emb::embedding_bag_dense_backward(floats({10, 20}, {1, 2}), longs({0, 0, 1}),
                                               longs({0}), fwd.max_indices, 2, opts(kMax));
  EXPECT_EQ(values(g), (std::vector<double>{10, 0, 0, 20}));
}

TEST(EmbeddingBagBackward, EmptyInputGivesZeroGradients) {
  for (auto mode : {kSum, kMean, kMax}) {
    Tensor grad = Tensor::full({2, 3}, 1.0, DType::kFloat32);
    auto fwd = emb::embedding_bag_forward(longs({}), Tensor::zeros({4, 3}, DType::kFloat32),
                                          longs({0, 0}), opts(mode));
    Tensor g = emb::embedding_bag_dense_backward(grad, longs({}), longs({0, 0}), fwd.max_indices, 4,
                                                 opts(mode));
    for (double v : values(g)) EXPECT_EQ(v, 0.0);
    if (mode != kMax) {
      auto s = emb::embedding_bag_sparse_backward(grad, longs({}), longs({0, 0}), 4, opts(mode));
      EXPECT_EQ(s.nnz(), 0);
      EXPECT_TRUE(s.is_coalesced());
    }
  }
}

// --- equivalence: EmbeddingBag == Embedding + reduction -----------------------------------------

TEST(EmbeddingBagEquivalence, EqualsLookupThenReduction) {
  std::mt19937 rng(2024);
  for (int trial = 0; trial < 60; ++trial) {
    const std::int64_t num = 1 + rng() % 20, dim = 1 + rng() % 17;
    Tensor w = Tensor::empty({num, dim}, DType::kFloat64);
    emb::Generator gen(trial);
    gen.normal_(w);
    std::vector<std::int64_t> ids, offsets;
    const int bags = 1 + rng() % 6;
    for (int b = 0; b < bags; ++b) {
      offsets.push_back(static_cast<std::int64_t>(ids.size()));
      const int len = rng() % 7;
      for (int i = 0; i < len; ++i) ids.push_back(rng() % num);
    }
    const std::int64_t pad = rng() % 2 ? std::int64_t(rng() % num) : -1;
    Tensor rows = emb::embedding(longs(ids), w);  // [n, dim]
    for (auto mode : {kSum, kMean, kMax}) {
      auto o = opts(mode);
      if (pad >= 0) o.padding_idx(pad);
      Tensor out = emb::embedding_bag(longs(ids), w, longs(offsets), o);
      for (int b = 0; b < bags; ++b) {
        const std::int64_t end = b + 1 < bags ? offsets[b + 1] : std::int64_t(ids.size());
        for (std::int64_t d = 0; d < dim; ++d) {
          double acc = 0;
          int count = 0;
          for (std::int64_t i = offsets[b]; i < end; ++i) {
            if (ids[i] == pad) continue;
            const double v = rows.at<double>(i, d);
            if (mode == kMax)
              acc = count == 0 ? v : std::max(acc, v);
            else
              acc += v;
            ++count;
          }
          if (mode == kMean && count > 0) acc /= count;
          EXPECT_EQ(out.at<double>(b, d), acc) << "trial " << trial << " bag " << b;
        }
      }
    }
  }
}

// --- module ------------------------------------------------------------------------------------

TEST(EmbeddingBagModule, ReprInPyTorch2Form) {
  EXPECT_EQ(EmbeddingBag(EmbeddingBagOptions(10, 3).mode(kSum)).to_string(),
            "EmbeddingBag(10, 3, mode='sum')");
  EXPECT_EQ(EmbeddingBag(EmbeddingBagOptions(10, 3)).to_string(),
            "EmbeddingBag(10, 3, mode='mean')");
  EXPECT_EQ(EmbeddingBag(EmbeddingBagOptions(10, 3)
                             .max_norm(2.0)
                             .norm_type(1.0)
                             .scale_grad_by_freq(true)
                             .mode(kSum)
                             .padding_idx(-1)
                             .sparse(true)
                             .include_last_offset(true))
                .to_string(),
            "EmbeddingBag(10, 3, max_norm=2.0, norm_type=1.0, scale_grad_by_freq=True, "
            "mode='sum', padding_idx=9)");
}

TEST(EmbeddingBagModule, InitZeroesThePaddingRow) {
  emb::Generator gen(3);
  EmbeddingBag m(EmbeddingBagOptions(6, 4).padding_idx(2), gen);
  EXPECT_EQ(m.weight().dtype(), DType::kFloat32);
  EXPECT_EQ(m.padding_idx(), 2);
  for (int d = 0; d < 4; ++d) EXPECT_EQ(m.weight().at<float>(2, d), 0.0f);
  EXPECT_NE(m.weight().at<float>(1, 0), 0.0f);
  m.weight().fill_(1.0);
  m.reset_parameters(gen);
  for (int d = 0; d < 4; ++d) EXPECT_EQ(m.weight().at<float>(2, d), 0.0f);
}

TEST(EmbeddingBagModule, FromPretrainedSharesFreezesAndKeepsThePaddingRow) {
  Tensor w = example_weight();
  EmbeddingBag m =
      EmbeddingBag::from_pretrained(w, emb::EmbeddingBagFromPretrainedOptions().padding_idx(1));
  EXPECT_TRUE(m.weight().shares_storage_with(w));
  EXPECT_FALSE(m.parameter().requires_grad());
  EXPECT_EQ(m.weight().at<float>(1, 0), 3.0f);
  EXPECT_EQ(m.mode(), kMean);
  // offsets arange -> one row per bag (upstream test_embedding_bag_from_pretrained).
  Tensor out = m(longs({0, 1, 2, 3, 4}), longs({0, 1, 2, 3, 4}));
  EXPECT_EQ(values(out), (std::vector<double>{1, 2, 0, 0, 5, 6, 7, 8, 9, 10}));
  m.backward(longs({0}), longs({0}), floats({1, 1}, {1, 2}));
  EXPECT_FALSE(m.parameter().has_grad());
}

TEST(EmbeddingBagModule, BackwardAccumulatesAndReturnsThePswGrad) {
  Tensor w = example_weight();
  EmbeddingBag m(EmbeddingBagOptions(5, 2).mode(kSum)._weight(w));
  EXPECT_TRUE(m.weight().shares_storage_with(w));
  Tensor psw = floats({0.5f, 2, -1, 3, 0.25f, 4}, {6});
  Tensor in = longs(kExampleInput), off = longs(kExampleOffsets);
  Tensor out = m(in, off, psw);
  EXPECT_EQ(out.shape(), (emb::Shape{5, 2}));
  Tensor dpsw = m.backward(in, off, example_grad(), psw);
  EXPECT_EQ(values(dpsw), (std::vector<double>{23, 11, 11, 25, 67, 11}));
  m.backward(in, off, example_grad(), psw);
  EXPECT_EQ(values(m.parameter().grad()),
            (std::vector<double>{24, 32, 20, 28, 0, 0, 1, 2, 1.5, 2}));
  EXPECT_FALSE(m.backward(in, off, example_grad()).defined());
}

TEST(EmbeddingBagModule, MaxBackwardFindsTheWinners) {
  EmbeddingBag m(EmbeddingBagOptions(5, 2).mode(kMax)._weight(example_weight()));
  Tensor in = longs(kExampleInput), off = longs(kExampleOffsets);
  m(in, off);
  m.backward(in, off, example_grad());
  EXPECT_EQ(values(m.parameter().grad()), (std::vector<double>{0, 0, 0, 0, 0, 0, 1, 2, 3, 4}));
}

TEST(EmbeddingBagModule, SparseBackwardGivesASparseGrad) {
  EmbeddingBag m(EmbeddingBagOptions(5, 2).mode(kMean).sparse(true)._weight(example_weight()));
  Tensor in = longs(kExampleInput), off = longs(kExampleOffsets);
  m.backward(in, off, example_grad());
  m.backward(in, off, example_grad());
  ASSERT_TRUE(m.parameter().grad_is_sparse());
  EXPECT_EQ(m.parameter().sparse_grad().nnz(), 12);
  EXPECT_EQ(m.parameter().sparse_grad().num_rows(), 5);
}

TEST(EmbeddingBagModule, TwoDInputAndIncludeLastOffset) {
  EmbeddingBag m(
      EmbeddingBagOptions(5, 2).mode(kSum).include_last_offset(true)._weight(example_weight()));
  Tensor out = m(Tensor::from_vector<std::int64_t>({3, 1, 1, 1, 4, 0}, {2, 3}));
  EXPECT_EQ(values(out), (std::vector<double>{13, 16, 13, 16}));
  Tensor out1 = m(longs(kExampleInput), longs({0, 3, 6}));
  EXPECT_TRUE(out.equal(out1));
  m.backward(longs(kExampleInput), longs({0, 3, 6}), floats({1, 2, 3, 4}, {2, 2}));
  EXPECT_EQ(values(m.parameter().grad()), (std::vector<double>{3, 4, 5, 8, 0, 0, 1, 2, 3, 4}));
}

}  // namespace
