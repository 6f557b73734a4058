// EmbeddingBag's errors: every invalid input PyTorch crashes on, returns garbage for, or rejects.
// Each case checks the exception type, that the message names the operation, position and value,
// and that the weight and the accumulated gradient are bit for bit unchanged (max_norm is set, so
// a renorm that ran before validation would show).
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "emb/emb.h"
#include "expect_error.h"

namespace {

using emb::DType;
using emb::EmbeddingBag;
using emb::EmbeddingBagFuncOptions;
using emb::EmbeddingBagMode;
using emb::EmbeddingBagOptions;
using emb::Tensor;
using emb::testing::expect_error;

Tensor longs(std::vector<std::int64_t> v) {
  const auto n = static_cast<std::int64_t>(v.size());
  return Tensor::from_vector<std::int64_t>(v, {n});
}

// A 5 x 2 table whose rows all have norm > 1, so a renorm with max_norm 1 would change them.
Tensor big_weight(DType dtype = DType::kFloat32) {
  Tensor w = Tensor::empty({5, 2}, dtype);
  for (int i = 0; i < 10; ++i) w.set_double(i, 3 + i);
  return w;
}

// Runs the functional forward with max_norm, then checks nothing changed.
template <typename E>
void expect_forward_error(const Tensor& input, const Tensor& offsets, EmbeddingBagFuncOptions o,
                          const Tensor& psw, const std::vector<std::string>& parts,
                          const Tensor& weight = big_weight()) {
  const Tensor before = weight.clone();
  o.max_norm(1.0);
  expect_error<E>([&] { emb::embedding_bag(input, weight, offsets, o, psw); }, parts);
  EXPECT_TRUE(weight.equal(before)) << "the weight changed";
}

EmbeddingBagFuncOptions mode(EmbeddingBagMode m) {
  return EmbeddingBagFuncOptions().mode(m);
}
constexpr auto kSum = EmbeddingBagMode::kSum;
constexpr auto kMean = EmbeddingBagMode::kMean;
constexpr auto kMax = EmbeddingBagMode::kMax;

// --- offsets (PyTorch 1.13: crashes or garbage, §2.5) -----------------------------------------

TEST(EmbeddingBagErrors, DecreasingOffsets) {
  expect_forward_error<emb::ValueError>(
      longs({1, 2, 3, 4, 0, 1}), longs({0, 5, 3}), mode(kSum), {},
      {"embedding_bag: offsets[2] = 3 is smaller than offsets[1] = 5"});
}

TEST(EmbeddingBagErrors, FirstOffsetNotZero) {
  expect_forward_error<emb::ValueError>(longs({1, 2, 3}), longs({1, 2}), mode(kMean), {},
                                        {"embedding_bag: offsets[0] = 1 must be 0"});
}

TEST(EmbeddingBagErrors, OffsetPastTheEnd) {
  expect_forward_error<emb::ValueError>(
      longs({1, 2, 3, 4, 0, 1}), longs({0, 2, 9}), mode(kMax), {},
      {"embedding_bag: offsets[2] = 9", "past the end", "6 indices"});
}

TEST(EmbeddingBagErrors, EmptyOffsetsWithIndices) {
  for (auto m : {kSum, kMean, kMax}) {
    expect_forward_error<emb::ValueError>(longs({1, 2}), longs({}), mode(m), {},
                                          {"embedding_bag: offsets is empty", "2 indices"});
  }
}

TEST(EmbeddingBagErrors, IncludeLastOffsetWithoutOffsets) {
  expect_forward_error<emb::ValueError>(
      longs({}), longs({}), mode(kSum).include_last_offset(true), {},
      {"embedding_bag: include_last_offset needs at least 1 offset"});
}

TEST(EmbeddingBagErrors, IncludeLastOffsetNotAtTheEnd) {
  // offsets [0] with ids (1.13: SIGSEGV in mode max) and offsets[-1] < len (1.13: double free).
  expect_forward_error<emb::ValueError>(longs({1, 2, 3}), longs({0}),
                                        mode(kMax).include_last_offset(true), {},
                                        {"embedding_bag: with include_last_offset, offsets[0] = 0",
                                         "must equal the number of indices, 3"});
  expect_forward_error<emb::ValueError>(longs({1, 2, 3, 4}), longs({0, 3, 3}),
                                        mode(kMean).include_last_offset(true).padding_idx(0), {},
                                        {"offsets[2] = 3 must equal the number of indices, 4"});
}

// --- ranks
// ------------------------------------------------------------------------------------------

TEST(EmbeddingBagErrors, InputRank) {
  expect_forward_error<emb::ValueError>(Tensor::zeros({2, 2, 2}, DType::kInt64), {}, mode(kSum), {},
                                        {"embedding_bag: input must be 1-D", "[2, 2, 2]"});
  expect_forward_error<emb::ValueError>(Tensor::scalar<std::int64_t>(1), longs({0}), mode(kSum), {},
                                        {"embedding_bag: input must be 1-D", "[]"});
}

TEST(EmbeddingBagErrors, OffsetsRankAndPresence) {
  expect_forward_error<emb::ValueError>(longs({1, 2}), Tensor::zeros({1, 1}, DType::kInt64),
                                        mode(kSum), {},
                                        {"embedding_bag: offsets must be 1-D", "[1, 1]"});
  expect_forward_error<emb::ValueError>(longs({1, 2}), {}, mode(kSum), {},
                                        {"embedding_bag: 1-D input needs offsets"});
  expect_forward_error<emb::ValueError>(Tensor::zeros({2, 2}, DType::kInt64), longs({0}),
                                        mode(kSum), {},
                                        {"embedding_bag: offsets must be undefined for 2-D input"});
}

TEST(EmbeddingBagErrors, WeightRankAndDtype) {
  expect_error<emb::ValueError>(
      [] { emb::embedding_bag(longs({0}), Tensor::zeros({5}, DType::kFloat32), longs({0})); },
      {"embedding_bag: weight must be 2-D", "[5]"});
  expect_error<emb::ValueError>(
      [] {
        emb::embedding_bag(longs({0}), Tensor::zeros({5, 2}, DType::kInt64), longs({0}));
      },
      {"embedding_bag: weight must be float32"});
}

TEST(EmbeddingBagErrors, IndexDtypes) {
  expect_forward_error<emb::ValueError>(
      Tensor::zeros({2}, DType::kFloat32), longs({0}), mode(kSum), {},
      {"embedding_bag: input must be int32 or int64, got float32"});
  expect_forward_error<emb::ValueError>(
      longs({1}), Tensor::zeros({1}, DType::kFloat64), mode(kSum), {},
      {"embedding_bag: offsets must be int32 or int64, got float64"});
}

// --- ids and padding_idx ------------------------------------------------------------------------

TEST(EmbeddingBagErrors, IdOutOfRange) {
  expect_forward_error<emb::IndexError>(
      longs({1, 2, 5}), longs({0}), mode(kSum), {},
      {"embedding_bag: input[2] = 5 is out of range for a table of 5 rows"});
  expect_forward_error<emb::IndexError>(longs({-1}), longs({0}), mode(kMax).padding_idx(0), {},
                                        {"input[0] = -1 is out of range"});
  expect_forward_error<emb::IndexError>(Tensor::from_vector<std::int32_t>({1, 2, 3, 7}, {2, 2}), {},
                                        mode(kMean), {}, {"input[1][1] = 7"});
  // Past the first groups of ids, a negative id before a too-large one: the first is named.
  expect_forward_error<emb::IndexError>(longs({0, 1, 2, 3, 4, 0, 1, 2, 3, -2, 4, 0, 9, 1}),
                                        longs({0, 6}), mode(kSum), {}, {"input[9] = -2"});
  expect_forward_error<emb::IndexError>(
      Tensor::from_vector<std::int32_t>({0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 5}, {12}), longs({0}),
      mode(kSum), {}, {"input[11] = 5 is out of range for a table of 5 rows"});
}

// A table of zero-width rows: nothing to sum, the ids still checked.
TEST(EmbeddingBagErrors, ZeroWidthRowsStillCheckIds) {
  const Tensor weight = Tensor::zeros({5, 0}, DType::kFloat32);
  expect_error<emb::IndexError>(
      [&] {
        emb::embedding_bag(longs({1, 7}), weight, longs({0}));
      },
      {"embedding_bag: input[1] = 7 is out of range for a table of 5 rows"});
}

TEST(EmbeddingBagErrors, PaddingIdxOutOfRange) {
  expect_forward_error<emb::IndexError>(
      longs({1}), longs({0}), mode(kSum).padding_idx(5), {},
      {"embedding_bag: padding_idx = 5 is out of range", "-5 to 4"});
  expect_forward_error<emb::IndexError>(longs({1}), longs({0}), mode(kSum).padding_idx(-6), {},
                                        {"padding_idx = -6"});
  expect_error<emb::IndexError>([] { EmbeddingBag m(EmbeddingBagOptions(5, 2).padding_idx(5)); },
                                {"EmbeddingBag: padding_idx = 5"});
}

// --- per_sample_weights -------------------------------------------------------------------------

TEST(EmbeddingBagErrors, PerSampleWeightsWithMeanOrMax) {
  Tensor psw = Tensor::full({2}, 1.0, DType::kFloat32);
  expect_forward_error<emb::NotImplementedError>(
      longs({1, 2}), longs({0}), mode(kMean), psw,
      {"per_sample_weights is only supported for mode sum, got mode mean"});
  expect_forward_error<emb::NotImplementedError>(longs({1, 2}), longs({0}), mode(kMax), psw,
                                                 {"got mode max"});
}

TEST(EmbeddingBagErrors, PerSampleWeightsShapeAndDtype) {
  expect_forward_error<emb::ValueError>(
      longs({1, 2}), longs({0}), mode(kSum), Tensor::full({3}, 1.0, DType::kFloat32),
      {"per_sample_weights has shape [3], expected the input's shape [2]"});
  expect_forward_error<emb::ValueError>(longs({1, 2}), longs({0}), mode(kSum),
                                        Tensor::full({2}, 1.0, DType::kFloat64),
                                        {"per_sample_weights has dtype float64, expected float32"});
}

// --- mode max combinations ---------------------------------------------------------------------

TEST(EmbeddingBagErrors, MaxWithSparseOrScaleGradByFreq) {
  expect_forward_error<emb::ValueError>(longs({1}), longs({0}), mode(kMax).sparse(true), {},
                                        {"mode max does not support sparse gradients"});
  expect_forward_error<emb::ValueError>(longs({1}), longs({0}), mode(kMax).scale_grad_by_freq(true),
                                        {}, {"mode max does not support scale_grad_by_freq"});
  expect_error<emb::ValueError>(
      [] { EmbeddingBag m(EmbeddingBagOptions(5, 2).mode(kMax).sparse(true)); },
      {"EmbeddingBag: mode max does not support sparse"});
}

// --- backward
// -------------------------------------------------------------------------------------

TEST(EmbeddingBagErrors, BackwardShapes) {
  Tensor g = Tensor::full({2, 2}, 1.0, DType::kFloat32);
  expect_error<emb::ValueError>(
      [&] {
        emb::embedding_bag_dense_backward(g, longs({1, 2}), longs({0}), {}, 5, mode(kSum));
      },
      {"embedding_bag_dense_backward: grad_output has shape [2, 2], expected [1, dim]"});
  expect_error<emb::ValueError>(
      [&] {
        emb::embedding_bag_dense_backward(g, longs({1, 2}), longs({0, 1}), {}, 5, mode(kMax));
      },
      {"mode max needs the forward's max_indices"});
  expect_error<emb::IndexError>(
      [&] {
        emb::embedding_bag_dense_backward(g, longs({1, 2}), longs({0, 1}),
                                          Tensor::from_vector<std::int64_t>({1, 1, 2, 9}, {2, 2}),
                                          5, mode(kMax));
      },
      {"max_indices[1][1] = 9 is out of range for a table of 5 rows"});
  expect_error<emb::ValueError>(
      [&] {
        emb::embedding_bag_sparse_backward(g, longs({1, 2}), longs({0, 1}), 5, mode(kMax));
      },
      {"embedding_bag_sparse_backward: mode max does not support sparse"});
  expect_error<emb::NotImplementedError>(
      [&] {
        emb::embedding_bag_per_sample_weights_backward(g, big_weight(), longs({1, 2}),
                                                       longs({0, 1}), mode(kMean));
      },
      {"embedding_bag_per_sample_weights_backward: per_sample_weights is only supported for mode "
       "sum"});
  expect_error<emb::ValueError>(
      [&] {
        emb::embedding_bag_sparse_backward(g, longs({1, 2}), longs({0, 3}), 5, mode(kSum));
      },
      {"embedding_bag_sparse_backward: offsets[1] = 3 is past the end"});
}

// A module's failed backward accumulates nothing, and a failed forward renorms nothing.
TEST(EmbeddingBagErrors, ModuleStateUnchanged) {
  for (bool sparse : {false, true}) {
    EmbeddingBag m(
        EmbeddingBagOptions(5, 2).mode(kSum).max_norm(1.0).sparse(sparse)._weight(big_weight()));
    Tensor psw = Tensor::full({3}, 2.0, DType::kFloat32);
    m.backward(longs({0, 1, 2}), longs({0, 1}), Tensor::full({2, 2}, 1.0, DType::kFloat32), psw);
    const Tensor w_before = m.weight().clone();
    const Tensor g_before =
        sparse ? m.parameter().sparse_grad().to_dense() : m.parameter().grad().clone();
    const std::int64_t nnz = sparse ? m.parameter().sparse_grad().nnz() : 0;

    expect_error<emb::ValueError>(
        [&] {
          m(longs({0, 1, 2}), longs({0, 2, 1}));
        },
        {"offsets[2] = 1 is smaller than offsets[1] = 2"});
    expect_error<emb::IndexError>([&] { m(longs({0, 1, 7}), longs({0})); }, {"input[2] = 7"});
    // A bad per_sample_weights shape fails after the weight gradient could have been computed.
    expect_error<emb::ValueError>(
        [&] {
          m.backward(longs({0, 1, 2}), longs({0, 1}), Tensor::full({2, 2}, 1.0, DType::kFloat32),
                     Tensor::full({4}, 1.0, DType::kFloat32));
        },
        {"per_sample_weights has shape [4]"});
    expect_error<emb::ValueError>(
        [&] {
          m.backward(longs({0, 1, 2}), longs({0, 1}), Tensor::full({3, 2}, 1.0, DType::kFloat32));
        },
        {"grad_output has shape [3, 2], expected [2, dim]"});
    expect_error<emb::ValueError>(
        [&] {
          m.backward(longs({0, 1, 2}), longs({0, 1}), Tensor::full({2, 2}, 1.0, DType::kFloat64));
        },
        {"EmbeddingBag::backward: grad_output has dtype float64"});
    expect_error<emb::IndexError>(
        [&] {
          m.backward(longs({0, 1, 9}), longs({0, 1}), Tensor::full({2, 2}, 1.0, DType::kFloat32));
        },
        {"input[2] = 9"});

    EXPECT_TRUE(m.weight().equal(w_before));
    if (sparse) {
      EXPECT_EQ(m.parameter().sparse_grad().nnz(), nnz);
      EXPECT_TRUE(m.parameter().sparse_grad().to_dense().equal(g_before));
    } else {
      EXPECT_TRUE(m.parameter().grad().equal(g_before));
    }
  }
}

}  // namespace
