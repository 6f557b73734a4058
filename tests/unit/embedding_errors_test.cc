// Every bad input: the exception type, a message with the operation, position and value, and
// the weight, gradients and renormed rows bit-for-bit unchanged afterwards.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "emb/embedding.h"
#include "expect_error.h"

namespace emb {
namespace {

using testing::expect_error;

Tensor ids(std::vector<std::int64_t> v, Shape shape) {
  return Tensor::from_vector(v, shape);
}

// A module with a renorm, a dense gradient already accumulated, and big rows (so a renorm would
// change them): every failing call must leave all of it as it was.
struct Fixture {
  Embedding m{EmbeddingOptions(10, 3).max_norm(0.5).padding_idx(0)};
  Tensor weight_before;
  Tensor grad_before;

  explicit Fixture(bool sparse = false)
      : m(EmbeddingOptions(10, 3).max_norm(0.5).padding_idx(0).sparse(sparse)) {
    m.weight().fill_(3.0);
    m.backward(ids({1, 2}, {2}), Tensor::full({2, 3}, 1.0, DType::kFloat32));
    weight_before = m.weight().clone();
    grad_before =
        sparse ? m.parameter().sparse_grad().values().clone() : m.parameter().grad().clone();
  }
  void expect_unchanged() const {
    EXPECT_TRUE(m.weight().equal(weight_before)) << "weight changed";
    const Tensor grad =
        m.options().sparse() ? m.parameter().sparse_grad().values() : m.parameter().grad();
    EXPECT_TRUE(grad.equal(grad_before)) << "gradient changed";
  }
};

// Without max_norm the gather checks the ids as it reads them: the same error, naming the first
// bad id, wherever it lies in a lookup big enough to run on several threads.
TEST(EmbeddingErrors, GatherCheckedIdsNameTheFirstBadOne) {
  const Tensor weight = Tensor::zeros({10, 64}, DType::kFloat32);
  const std::int64_t n = 200000;
  for (const DType dt : {DType::kInt64, DType::kInt32}) {
    for (const std::int64_t at : {std::int64_t{0}, n / 2 + 7, n - 1}) {
      for (const std::int64_t bad : {std::int64_t{-3}, std::int64_t{10}}) {
        Tensor ids = Tensor::zeros({n}, dt);
        for (std::int64_t i = 0; i < n; ++i) ids.set_double(i, static_cast<double>(i % 10));
        ids.set_double(at, static_cast<double>(bad));
        if (at + 5 < n) ids.set_double(at + 5, 99.0);  // a later bad id is not the one named
        expect_error<IndexError>([&] { embedding(ids, weight); },
                                 {"embedding: indices[" + std::to_string(at) + "] = " +
                                  std::to_string(bad) + " is out of range for a table of 10 rows"});
      }
    }
  }
}

// A table of zero-width rows: nothing to copy, the ids still checked.
TEST(EmbeddingErrors, ZeroWidthRowsStillCheckIds) {
  const Tensor weight = Tensor::zeros({10, 0}, DType::kFloat32);
  const Tensor bad = Tensor::from_vector<std::int64_t>({3, 12}, {2});
  expect_error<IndexError>([&] { embedding(bad, weight); },
                           {"embedding: indices[1] = 12 is out of range for a table of 10 rows"});
  EXPECT_EQ(embedding(Tensor::from_vector<std::int64_t>({3, 9}, {2}), weight).shape(),
            (Shape{2, 0}));
}

TEST(EmbeddingErrors, OutOfRangeIdNamesPositionAndValue) {
  Fixture f;
  // ids 1..3 are valid and would be renormed; the bad id comes last: nothing may be touched.
  const Tensor bad = ids({1, 2, 3, 4, 5, 6, 7, 12}, {2, 4});
  expect_error<IndexError>(
      [&] { f.m(bad); }, {"embedding: indices[1][3] = 12 is out of range for a table of 10 rows"});
  f.expect_unchanged();
  expect_error<IndexError>([&] { f.m(ids({-1}, {1})); }, {"indices[0] = -1", "10 rows"});
  f.expect_unchanged();
  expect_error<IndexError>([&] { f.m(Tensor::scalar<std::int64_t>(10)); }, {"indices = 10"});
  f.expect_unchanged();
  expect_error<IndexError>(
      [&] {
        f.m.backward(bad, Tensor::zeros({2, 4, 3}, DType::kFloat32));
      },
      {"embedding_dense_backward: indices[1][3] = 12"});
  f.expect_unchanged();
  expect_error<IndexError>(
      [&] {
        embedding_renorm_(f.m.weight(), ids({1, 99}, {2}), 0.1, 2.0);
      },
      {"embedding_renorm_: indices[1] = 99"});
  f.expect_unchanged();
}

TEST(EmbeddingErrors, SparseBackwardLeavesGradUnchanged) {
  Fixture f(/*sparse=*/true);
  expect_error<IndexError>(
      [&] {
        f.m.backward(ids({3, 11}, {2}), Tensor::zeros({2, 3}, DType::kFloat32));
      },
      {"embedding_sparse_backward: indices[1] = 11"});
  f.expect_unchanged();
  EXPECT_EQ(f.m.parameter().sparse_grad().nnz(), 2);
}

TEST(EmbeddingErrors, FrozenWeightStillValidatesBackward) {
  Embedding m = Embedding::from_pretrained(Tensor::zeros({4, 2}, DType::kFloat32));
  expect_error<IndexError>(
      [&] {
        m.backward(ids({1, 9}, {2}), Tensor::zeros({2, 2}, DType::kFloat32));
      },
      {"Embedding::backward: indices[1] = 9 is out of range for a table of 4 rows"});
  expect_error<ValueError>(
      [&] {
        m.backward(ids({1, 2}, {2}), Tensor::zeros({3, 2}, DType::kFloat32));
      },
      {"grad_output has shape [3, 2]"});
  m.backward(ids({1, 2}, {2}), Tensor::zeros({2, 2}, DType::kFloat32));
  EXPECT_FALSE(m.parameter().has_grad());
}

TEST(EmbeddingErrors, WrongIndexDtype) {
  Fixture f;
  expect_error<ValueError>([&] { f.m(Tensor::zeros({2}, DType::kFloat32)); },
                           {"embedding: indices must be int32 or int64, got float32"});
  f.expect_unchanged();
  expect_error<ValueError>([&] { f.m(Tensor()); }, {"indices is undefined"});
}

TEST(EmbeddingErrors, BadPaddingIdx) {
  expect_error<IndexError>([] { Embedding(EmbeddingOptions(10, 3).padding_idx(10)); },
                           {"Embedding: padding_idx = 10", "valid: -10 to 9"});
  expect_error<IndexError>([] { Embedding(EmbeddingOptions(10, 3).padding_idx(-11)); },
                           {"padding_idx = -11"});
  const Tensor w = Tensor::full({4, 2}, 5.0, DType::kFloat32);
  const Tensor before = w.clone();
  expect_error<IndexError>(
      [&] { embedding(ids({1}, {1}), w, EmbeddingFuncOptions().padding_idx(4).max_norm(1.0)); },
      {"embedding: padding_idx = 4"});
  EXPECT_TRUE(w.equal(before));
  expect_error<IndexError>(
      [&] {
        embedding_dense_backward(Tensor::zeros({1, 2}, DType::kFloat32), ids({0}, {1}), 4, 7,
                                 false);
      },
      {"padding_idx = 7"});
}

TEST(EmbeddingErrors, WeightNot2D) {
  for (const Shape& s : {Shape{}, Shape{3}, Shape{2, 2, 2}}) {
    expect_error<ValueError>([&] { embedding(ids({0}, {1}), Tensor::zeros(s, DType::kFloat32)); },
                             {"embedding: weight must be 2-D, got shape " + shape_to_string(s)});
  }
  expect_error<ValueError>(
      [] {
        Embedding::from_pretrained(Tensor::zeros({2, 2, 2}, DType::kFloat32));
      },
      {"from_pretrained", "2-D", "[2, 2, 2]"});
  expect_error<ValueError>(
      [] {
        embedding_renorm_(Tensor::zeros({4, 2}, DType::kInt64), ids({0}, {1}), 1.0, 2.0);
      },
      {"embedding_renorm_: weight must be float32, float64, float16 or bfloat16, got int64"});
}

TEST(EmbeddingErrors, MismatchedWeightOption) {
  const Tensor w = Tensor::zeros({3, 4}, DType::kFloat32);
  expect_error<ValueError>([&] { Embedding(EmbeddingOptions(4, 3)._weight(w)); },
                           {"Embedding: _weight has shape [3, 4], expected [4, 3]"});
}

TEST(EmbeddingErrors, MismatchedGradOutput) {
  Fixture f;
  expect_error<ValueError>(
      [&] {
        f.m.backward(ids({1, 2}, {2}), Tensor::zeros({3, 3}, DType::kFloat32));
      },
      {"grad_output has shape [3, 3], expected [2, 3]"});
  f.expect_unchanged();
  expect_error<ValueError>(
      [&] {
        f.m.backward(ids({1, 2}, {2}), Tensor::zeros({2, 4}, DType::kFloat32));
      },
      {"grad_output has shape [2, 4]", "3"});
  f.expect_unchanged();
  expect_error<ValueError>(
      [&] {
        f.m.backward(ids({1, 2}, {2}), Tensor::zeros({2, 3}, DType::kFloat64));
      },
      {"grad_output has dtype float64"});
  f.expect_unchanged();
  expect_error<ValueError>(
      [&] {
        embedding_dense_backward(Tensor::zeros({2, 3}, DType::kInt32), ids({1, 2}, {2}), 10,
                                 std::nullopt, false);
      },
      {"grad_output must be float32"});
  expect_error<ValueError>(
      [&] {
        embedding_dense_backward(Tensor::zeros({2, 3}, DType::kFloat32), ids({1, 2}, {2}), -1,
                                 std::nullopt, false);
      },
      {"num_weights = -1"});
}

TEST(EmbeddingErrors, NegativeAndOverflowingSizes) {
  expect_error<ValueError>([] { Embedding(EmbeddingOptions(-1, 3)); },
                           {"Embedding: negative dimension -1", "[-1, 3]"});
  expect_error<ValueError>([] { Embedding(EmbeddingOptions(3, -2)); }, {"negative dimension -2"});
  expect_error<ValueError>(
      [] { Embedding(EmbeddingOptions(std::int64_t{1} << 40, std::int64_t{1} << 30)); },
      {"Embedding: shape [1099511627776, 1073741824] has too many elements"});
}

}  // namespace
}  // namespace emb
