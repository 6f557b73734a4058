// Embedding behaviour on hand-checked values (spec §1); the libtorch comparison is in parity/.
#include "emb/embedding.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "emb/embedding_bag.h"
#include "emb/runtime.h"

namespace emb {
namespace {

Tensor ids(std::vector<std::int64_t> v, Shape shape) {
  return Tensor::from_vector(v, shape);
}

Tensor rows_k(std::int64_t num, std::int64_t dim) {  // row k = [k*dim, k*dim+1, ...]
  Tensor w = Tensor::empty({num, dim}, DType::kFloat32);
  for (std::int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = static_cast<float>(i);
  return w;
}

TEST(EmbeddingForward, ShapesFollowTheIndices) {
  const Tensor w = rows_k(10, 3);
  EXPECT_EQ(embedding(Tensor::scalar<std::int64_t>(4), w).shape(), (Shape{3}));
  EXPECT_EQ(embedding(Tensor::empty({0}, DType::kInt64), w).shape(), (Shape{0, 3}));
  EXPECT_EQ(embedding(Tensor::empty({2, 0}, DType::kInt32), w).shape(), (Shape{2, 0, 3}));
  const Tensor out = embedding(ids({1, 2, 4, 5, 4, 3, 2, 9}, {2, 4}), w);
  EXPECT_EQ(out.shape(), (Shape{2, 4, 3}));
  EXPECT_EQ(out.at<float>(1, 3, 2), 29.0f);  // row 9, column 2
  EXPECT_EQ(embedding(Tensor::scalar<std::int64_t>(4), w).at<float>(1), 13.0f);
}

TEST(EmbeddingForward, Int32IdsAndEveryWeightDtype) {
  const Tensor i32 = Tensor::from_vector<std::int32_t>({2, 0}, {2});
  for (DType dt : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16,
                   DType::kInt32, DType::kInt64}) {
    const Tensor w = rows_k(3, 2).to(dt);
    const Tensor out = embedding(i32, w);
    EXPECT_EQ(out.dtype(), dt);
    EXPECT_EQ(out.get_double(0), 4.0);
    EXPECT_EQ(out.get_double(3), 1.0);
  }
}

TEST(EmbeddingForward, PaddingRowIsZeroedAtInitButNotInTheForward) {
  Embedding m(EmbeddingOptions(10, 3).padding_idx(0));
  const Tensor out = m(ids({0, 2, 0, 5}, {1, 4}));
  for (std::int64_t d = 0; d < 3; ++d) {
    EXPECT_EQ(out.at<float>(0, 0, d), 0.0f);
    EXPECT_EQ(out.at<float>(0, 2, d), 0.0f);
  }
  m.weight().select(0).fill_(1.0);  // the article: change the pad vector under no-grad
  EXPECT_EQ(m(ids({0}, {1})).at<float>(0, 1), 1.0f);
  EXPECT_EQ(*Embedding(EmbeddingOptions(5, 3).padding_idx(-2)).padding_idx(), 3);
}

TEST(EmbeddingRenorm, KnownValues) {
  const Tensor w = Tensor::from_vector<double>({3, 4, 0.3, 0.4, 6, 8}, {3, 2});
  embedding(ids({0, 2, 0}, {3}), w, EmbeddingFuncOptions().max_norm(1.0));
  EXPECT_EQ(w.at<double>(0, 0), 3 / (5 + 1e-7));
  EXPECT_EQ(w.at<double>(0, 1), 4 / (5 + 1e-7));
  EXPECT_EQ(w.at<double>(1, 0), 0.3);  // not looked up: untouched
  EXPECT_EQ(w.at<double>(2, 0), 6 * (1 / (10 + 1e-7)));
  EXPECT_LT(std::hypot(w.at<double>(0, 0), w.at<double>(0, 1)), 1.0);

  struct Case {
    double p;
    double norm;
  };
  const double inf = std::numeric_limits<double>::infinity();
  for (Case c : {Case{1, 7}, Case{inf, 4}, Case{-inf, 3}, Case{0, 2}, Case{2, 5}, Case{0.5, 0}}) {
    const Tensor r = Tensor::from_vector<double>({3, 4}, {1, 2});
    embedding_renorm_(r, ids({0}, {1}), 1.0, c.p);
    if (c.p == 0.5) {  // (sqrt 3 + sqrt 4)^2, up to the rounding of pow
      const double norm = std::pow(std::sqrt(3.0) + std::sqrt(4.0), 2.0);
      EXPECT_NEAR(r.at<double>(0, 0), 3 / (norm + 1e-7), 1e-15);
    } else {
      EXPECT_EQ(r.at<double>(0, 0), 3 * (1 / (c.norm + 1e-7))) << "p=" << c.p;
    }
  }
}

TEST(EmbeddingRenorm, EdgeCases) {
  // norm == max_norm: untouched (strict >)
  Tensor w = Tensor::from_vector<double>({3, 4}, {1, 2});
  embedding_renorm_(w, ids({0}, {1}), 5.0, 2.0);
  EXPECT_EQ(w.at<double>(0, 0), 3.0);
  // max_norm = 0: zeros; negative: sign flip
  embedding_renorm_(w, ids({0}, {1}), 0.0, 2.0);
  EXPECT_EQ(w.at<double>(0, 1), 0.0);
  w = Tensor::from_vector<double>({3, 4}, {1, 2});
  embedding_renorm_(w, ids({0}, {1}), -1.0, 2.0);
  EXPECT_LT(w.at<double>(0, 0), 0.0);
  // NaN row: NaN > m is false -> untouched; +inf row -> inf * 0 = NaN, finite -> 0
  w = Tensor::from_vector<double>({std::nan(""), 1, INFINITY, 2}, {2, 2});
  embedding_renorm_(w, ids({0, 1}, {2}), 1.0, 2.0);
  EXPECT_EQ(w.at<double>(0, 1), 1.0);
  EXPECT_TRUE(std::isnan(w.at<double>(1, 0)));
  EXPECT_EQ(w.at<double>(1, 1), 0.0);
  // the padding row is renormed too; p = 0 shrinks on every call
  w = Tensor::from_vector<float>({3, 4, 6, 8}, {2, 2});
  embedding(ids({1}, {1}), w, EmbeddingFuncOptions().padding_idx(1).max_norm(1.0));
  EXPECT_LT(w.at<float>(1, 0), 1.0f);
  w = Tensor::from_vector<float>({3, 4}, {1, 2});
  embedding_renorm_(w, ids({0}, {1}), 1.0, 0.0);
  const float first = w.at<float>(0, 0);
  embedding_renorm_(w, ids({0}, {1}), 1.0, 0.0);
  EXPECT_LT(w.at<float>(0, 0), first);
}

TEST(EmbeddingBackward, DenseFormula) {
  // grad[k] = sum of grad_output rows at positions with id k; padding row 0.
  const Tensor input = ids({1, 2, 1, 1, 0, 5}, {2, 3});
  Tensor g = Tensor::empty({2, 3, 2}, DType::kFloat32);
  for (std::int64_t i = 0; i < g.numel(); ++i) g.data<float>()[i] = static_cast<float>(i + 1);
  const Tensor grad = embedding_dense_backward(g, input, 6, 0, false);
  EXPECT_EQ(grad.shape(), (Shape{6, 2}));
  EXPECT_EQ(grad.at<float>(1, 0), 1.0f + 5.0f + 7.0f);
  EXPECT_EQ(grad.at<float>(2, 1), 4.0f);
  EXPECT_EQ(grad.at<float>(0, 0), 0.0f);  // padding
  EXPECT_EQ(grad.at<float>(5, 1), 12.0f);
  EXPECT_EQ(grad.at<float>(3, 0), 0.0f);
  const Tensor sgf = embedding_dense_backward(g, input, 6, std::nullopt, true);
  EXPECT_FLOAT_EQ(sgf.at<float>(1, 0), (1.0f + 5.0f + 7.0f) / 3.0f);
  EXPECT_EQ(sgf.at<float>(0, 0), 9.0f);
  // sequential accumulation in input order: ((1e8 + 1) - 1e8) + 1 = 1 in fp32
  const Tensor big = Tensor::from_vector<float>({1e8f, 1, -1e8f, 1}, {4, 1});
  EXPECT_EQ(
      embedding_dense_backward(big, ids({0, 0, 0, 0}, {4}), 1, std::nullopt, false).at<float>(0, 0),
      1.0f);
  EXPECT_EQ(embedding_dense_backward(Tensor::empty({0, 4}, DType::kFloat32), ids({}, {0}), 3,
                                     std::nullopt, false)
                .equal(Tensor::zeros({3, 4}, DType::kFloat32)),
            true);
}

TEST(EmbeddingBackward, SparseStructure) {
  const Tensor input = ids({1, 2, 1, 1, 0, 5}, {2, 3});
  const Tensor g = Tensor::full({2, 3, 2}, 1.0, DType::kFloat32);
  const SparseGrad s = embedding_sparse_backward(g, input, 6, 1, false);
  EXPECT_TRUE(s.indices().equal(ids({2, 0, 5}, {3})));
  EXPECT_EQ(s.values().shape(), (Shape{3, 2}));
  EXPECT_FALSE(s.is_coalesced());
  const SparseGrad all_pad = embedding_sparse_backward(Tensor::full({2, 2}, 1.0, DType::kFloat32),
                                                       ids({1, 1}, {2}), 6, 1, false);
  EXPECT_EQ(all_pad.nnz(), 0);
  EXPECT_TRUE(all_pad.is_coalesced());
  // beyond PyTorch: scale_grad_by_freq with sparse gradients
  const SparseGrad sgf = embedding_sparse_backward(g, input, 6, std::nullopt, true);
  EXPECT_FLOAT_EQ(sgf.to_dense().at<float>(1, 0), 1.0f);
  EXPECT_THROW(SparseGrad(ids({2, 2}, {2}), Tensor::zeros({2, 2}, DType::kFloat32), 6, true),
               ValueError);  // "coalesced" ids must be sorted and distinct
  const SparseGrad c = sgf.coalesce();
  EXPECT_TRUE(c.indices().equal(ids({0, 1, 2, 5}, {4})));
  EXPECT_TRUE(c.is_coalesced());
}

TEST(EmbeddingModule, GradientsAccumulateAndClear) {
  Embedding m(EmbeddingOptions(4, 2));
  const Tensor input = ids({1, 1}, {2});
  const Tensor g = Tensor::full({2, 2}, 1.0, DType::kFloat32);
  m.backward(input, g);
  m.backward(input, g);
  EXPECT_EQ(m.parameter().grad().at<float>(1, 0), 4.0f);
  m.zero_grad();
  EXPECT_FALSE(m.parameter().has_grad());

  Embedding s(EmbeddingOptions(4, 2).sparse(true));
  s.backward(input, g);
  s.backward(ids({3}, {1}), Tensor::full({1, 2}, 1.0, DType::kFloat32));
  EXPECT_EQ(s.parameter().sparse_grad().nnz(), 3);
  EXPECT_THROW(s.parameter().grad(), ValueError);
  // a dense gradient joining a sparse one makes it dense
  s.parameter().accumulate_grad(Tensor::full({4, 2}, 1.0, DType::kFloat32));
  EXPECT_EQ(s.parameter().grad().at<float>(1, 1), 3.0f);
}

// PyTorch 1.13 (two backward passes, either order) gives 1e8 here: the sparse rows are added
// one by one onto the dense gradient, each + 3 rounding away in float32.
TEST(Parameter, SparseRowsAddOntoDenseOneByOne) {
  const SparseGrad rows(Tensor::from_vector<std::int64_t>({0, 0}, {2}),
                        Tensor::from_vector<float>({3, 3}, {2, 1}), 1);
  const Tensor dense = Tensor::from_vector<float>({1e8f}, {1, 1});
  Parameter dense_first(Tensor::zeros({1, 1}, DType::kFloat32));
  dense_first.accumulate_grad(dense);
  dense_first.accumulate_grad(rows);
  Parameter sparse_first(Tensor::zeros({1, 1}, DType::kFloat32));
  sparse_first.accumulate_grad(rows);
  sparse_first.accumulate_grad(dense);
  EXPECT_EQ(dense_first.grad().at<float>(0, 0), 1e8f);
  EXPECT_EQ(sparse_first.grad().at<float>(0, 0), 1e8f);
  EXPECT_FALSE(sparse_first.grad_is_sparse());
}

TEST(Parameter, FirstGradientIsCopiedOrTaken) {
  Parameter copied(Tensor::zeros({2, 2}, DType::kFloat32));
  const Tensor g = Tensor::full({2, 2}, 1.0, DType::kFloat32);
  copied.accumulate_grad(g);
  EXPECT_FALSE(copied.grad().shares_storage_with(g));
  copied.accumulate_grad(g);
  EXPECT_EQ(g.at<float>(0, 0), 1.0f);  // the caller's tensor is never written
  EXPECT_EQ(copied.grad().at<float>(0, 0), 2.0f);

  Parameter taken(Tensor::zeros({2, 2}, DType::kFloat32));
  Tensor fresh = Tensor::full({2, 2}, 1.0, DType::kFloat32);
  const Tensor alias = fresh;
  taken.accumulate_grad(std::move(fresh));
  EXPECT_TRUE(taken.grad().shares_storage_with(alias));  // no copy

  Parameter frozen(Tensor::zeros({2, 2}, DType::kFloat32), false);
  frozen.accumulate_grad(g);
  EXPECT_FALSE(frozen.has_grad());
  EXPECT_THROW(copied.accumulate_grad(Tensor::zeros({3, 2}, DType::kFloat32)), ValueError);
  EXPECT_EQ(copied.grad().at<float>(1, 1), 2.0f);
}

TEST(EmbeddingModule, FromPretrainedIsFrozenAndShared) {
  const Tensor w = Tensor::from_vector<float>({1, 2.3f, 3, 4, 5.1f, 6.3f}, {2, 3});
  Embedding m = Embedding::from_pretrained(w);
  EXPECT_TRUE(m.weight().shares_storage_with(w));
  EXPECT_FALSE(m.parameter().requires_grad());
  m.backward(ids({1}, {1}), Tensor::full({1, 3}, 1.0, DType::kFloat32));
  EXPECT_FALSE(m.parameter().has_grad());
  EXPECT_EQ(m(ids({1}, {1})).at<float>(0, 1), 5.1f);
  Embedding t = Embedding::from_pretrained(w, EmbeddingFromPretrainedOptions().freeze(false));
  t.backward(ids({1}, {1}), Tensor::full({1, 3}, 1.0, DType::kFloat32));
  EXPECT_EQ(t.parameter().grad().at<float>(1, 2), 1.0f);
  EXPECT_THROW(Embedding::from_pretrained(Tensor::zeros({3}, DType::kFloat32)), ValueError);
}

TEST(EmbeddingModule, WeightOptionSharesAndIsNotReset) {
  const Tensor w = Tensor::full({3, 2}, 7.0, DType::kFloat32);
  Embedding m(EmbeddingOptions(3, 2).padding_idx(0)._weight(w));
  EXPECT_TRUE(m.weight().shares_storage_with(w));
  EXPECT_EQ(m.weight().at<float>(0, 0), 7.0f);  // padding row not zeroed
  m.reset_parameters();
  EXPECT_EQ(m.weight().at<float>(0, 0), 0.0f);
  EXPECT_EQ(w.at<float>(0, 0), 0.0f);
}

TEST(EmbeddingModule, InitializationIsSeededStandardNormal) {
  Generator a(42), b(42), c(43);
  Embedding ma(EmbeddingOptions(200, 500), a);
  Embedding mb(EmbeddingOptions(200, 500), b);
  Embedding mc(EmbeddingOptions(200, 500), c);
  EXPECT_TRUE(ma.weight().equal(mb.weight()));
  EXPECT_FALSE(ma.weight().equal(mc.weight()));
  double sum = 0, sq = 0;
  const std::int64_t n = ma.weight().numel();
  for (std::int64_t i = 0; i < n; ++i) {
    sum += ma.weight().get_double(i);
    sq += ma.weight().get_double(i) * ma.weight().get_double(i);
  }
  const double mean = sum / n, var = sq / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 5.0 / std::sqrt(n));  // 5 standard errors
  EXPECT_NEAR(var, 1.0, 0.02);
  manual_seed(7);
  Embedding d1(EmbeddingOptions(3, 3));
  manual_seed(7);
  Embedding d2(EmbeddingOptions(3, 3));
  EXPECT_TRUE(d1.weight().equal(d2.weight()));
}

TEST(EmbeddingModule, PrintsLikePyTorch) {
  EXPECT_EQ(Embedding(EmbeddingOptions(10, 3)).to_string(), "Embedding(10, 3)");
  EXPECT_EQ(Embedding(EmbeddingOptions(10, 3).padding_idx(0)).to_string(),
            "Embedding(10, 3, padding_idx=0)");
  EXPECT_EQ(Embedding(EmbeddingOptions(10, 3)
                          .padding_idx(9)
                          .max_norm(1.0)
                          .norm_type(1.0)
                          .scale_grad_by_freq(true)
                          .sparse(true))
                .to_string(),
            "Embedding(10, 3, padding_idx=9, max_norm=1.0, norm_type=1.0, scale_grad_by_freq=True, "
            "sparse=True)");
  EXPECT_EQ(Embedding(EmbeddingOptions(5, 2).max_norm(0.1).norm_type(INFINITY)).to_string(),
            "Embedding(5, 2, max_norm=0.1, norm_type=inf)");
}

// Option values print as Python's repr() of a float does.
TEST(EmbeddingModule, PrintsFloatOptionsAsPythonRepr) {
  const std::pair<double, const char*> cases[] = {{-1, "-1.0"},
                                                  {0.1, "0.1"},
                                                  {1e-8, "1e-08"},
                                                  {1e-4, "0.0001"},
                                                  {1.5e-5, "1.5e-05"},
                                                  {123, "123.0"},
                                                  {2.5e15, "2500000000000000.0"},
                                                  {1e16, "1e+16"},
                                                  {-0.001, "-0.001"},
                                                  {0, "0.0"},
                                                  {std::nan(""), "nan"}};
  for (const auto& [value, text] : cases) {
    EXPECT_EQ(Embedding(EmbeddingOptions(2, 2).max_norm(value)).to_string(),
              std::string("Embedding(2, 2, max_norm=") + text + ")");
  }
}

// A gradient written densely (here 4,096 rows of a 16 MiB table, more than 48 per 2 MiB) takes
// the memory of the previous such gradient once it is freed, zeroed again: whatever was written
// into the old one, the new one holds exactly its own sums, and +0 everywhere else.
TEST(EmbeddingDenseBackward, ReusedGradientMemoryIsZeroed) {
  const std::int64_t rows = 65536, dim = 64, n = 4096;
  auto draw = [&](std::uint64_t seed) {
    Tensor t = Tensor::empty({n}, DType::kInt64);
    for (std::int64_t i = 0; i < n; ++i) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      t.data<std::int64_t>()[i] = static_cast<std::int64_t>((seed >> 33) % rows);
    }
    return t;
  };
  Tensor grad = Tensor::empty({n, dim}, DType::kFloat32);
  for (std::int64_t i = 0; i < grad.numel(); ++i) {
    grad.data<float>()[i] = static_cast<float>(i % 97) * 0.125f - 3.0f;
  }
  // The expected gradient: each position's row added in input order onto +0.
  auto expected = [&](const Tensor& ids) {
    std::vector<float> e(static_cast<std::size_t>(rows * dim), 0.0f);
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t k = ids.data<std::int64_t>()[i];
      for (std::int64_t d = 0; d < dim; ++d) {
        e[static_cast<std::size_t>(k * dim + d)] += grad.data<float>()[i * dim + d];
      }
    }
    return e;
  };
  auto same = [&](const Tensor& g, const std::vector<float>& e) {
    return g.shape() == Shape{rows, dim} &&
           std::memcmp(g.data<float>(), e.data(), e.size() * sizeof(float)) == 0;
  };
  const Tensor ids_a = draw(1), ids_b = draw(2);
  const std::vector<float> want_a = expected(ids_a), want_b = expected(ids_b);
  for (int round = 0; round < 3; ++round) {
    {
      Tensor g = embedding_dense_backward(grad, ids_a, rows, std::nullopt, false);
      ASSERT_TRUE(same(g, want_a)) << "round " << round;
      // Dirty every element (NaN bits) before the memory goes back.
      std::memset(g.data<float>(), 0xff, g.nbytes());
    }
    Tensor g = embedding_dense_backward(grad, ids_b, rows, std::nullopt, false);
    ASSERT_TRUE(same(g, want_b)) << "round " << round;
    // A second gradient while the first is alive gets other memory; both stay right. (A bag of
    // one id per position has the lookup's gradient.)
    Tensor offsets = Tensor::empty({n}, DType::kInt64);
    for (std::int64_t i = 0; i < n; ++i) offsets.data<std::int64_t>()[i] = i;
    Tensor h = embedding_bag_dense_backward(grad, ids_a, offsets, {}, rows,
                                            EmbeddingBagFuncOptions().mode(EmbeddingBagMode::kSum));
    ASSERT_TRUE(same(h, want_a)) << "round " << round;
    ASSERT_TRUE(same(g, want_b)) << "round " << round;
    std::memset(g.data<float>(), 0xff, g.nbytes());
    std::memset(h.data<float>(), 0xff, h.nbytes());
    if (round == 1) release_cached_memory();
  }
}

// A coalesced sparse gradient whose values take 4 MiB or more reuses the memory of the last such
// gradient freed (when it fits): whatever was written into the old one, the new one holds
// exactly its own rows, as coalesce() of the uncoalesced gradient computes them.
TEST(EmbeddingSparseBackward, ReusedCoalescedMemoryHoldsOnlyItsRows) {
  const std::int64_t rows = 1 << 20, dim = 64, n = 20000;  // about 5 MiB of values
  auto draw = [&](std::uint64_t seed, std::int64_t range) {
    Tensor t = Tensor::empty({n}, DType::kInt64);
    for (std::int64_t i = 0; i < n; ++i) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      t.data<std::int64_t>()[i] = static_cast<std::int64_t>((seed >> 33) % range);
    }
    return t;
  };
  Tensor grad = Tensor::empty({n, dim}, DType::kFloat32);
  for (std::int64_t i = 0; i < grad.numel(); ++i) {
    grad.data<float>()[i] = static_cast<float>(i % 89) * 0.25f - 7.0f;
  }
  auto same = [](const SparseGrad& a, const SparseGrad& b) {
    const Tensor ai = a.indices(), bi = b.indices();
    return ai.shape() == bi.shape() && a.values().shape() == b.values().shape() &&
           std::memcmp(ai.data<std::int64_t>(), bi.data<std::int64_t>(), ai.nbytes()) == 0 &&
           std::memcmp(a.values().data<float>(), b.values().data<float>(), a.values().nbytes()) ==
               0;
  };
  // Ids over the whole table (almost all distinct), then over fewer rows (fewer, longer groups).
  const Tensor ids[] = {draw(1, rows), draw(2, rows), draw(3, 40000), draw(4, rows)};
  for (int round = 0; round < 2; ++round) {
    for (const Tensor& t : ids) {
      const SparseGrad want =
          embedding_sparse_backward(grad, t, rows, std::nullopt, false).coalesce();
      SparseGrad g = embedding_sparse_backward_coalesced(grad, t, rows, std::nullopt, false);
      ASSERT_TRUE(g.is_coalesced());
      ASSERT_TRUE(same(g, want)) << "round " << round;
      // One alive while the next is made: other memory, both stay right.
      const SparseGrad h = embedding_sparse_backward_coalesced(grad, t, rows, std::nullopt, false);
      ASSERT_TRUE(same(h, want) && same(g, want)) << "round " << round;
      // Dirty every element (NaN bits) before the memory goes back.
      std::memset(g.values().data<float>(), 0xff, g.values().nbytes());
      std::memset(h.values().data<float>(), 0xff, h.values().nbytes());
    }
    if (round == 0) release_cached_memory();
  }
}

// Big outputs (4 MiB and more) of embedding() and embedding_bag() take the memory of freed ones:
// whatever was written into the old output, the new one holds exactly the rows looked up.
TEST(EmbeddingForward, ReusedOutputMemoryHoldsTheLookup) {
  const std::int64_t rows = 1024, dim = 64, n = 20000;  // 5 MB of output
  const Tensor w = rows_k(rows, dim);
  Tensor idx = Tensor::empty({n}, DType::kInt64);
  for (std::int64_t i = 0; i < n; ++i) idx.data<std::int64_t>()[i] = (i * 7919) % rows;
  Tensor offsets = Tensor::empty({n}, DType::kInt64);
  for (std::int64_t i = 0; i < n; ++i) offsets.data<std::int64_t>()[i] = i;
  const void* previous = nullptr;  // the memory of the last output, freed since
  for (int round = 0; round < 3; ++round) {
    for (int bag = 0; bag < 2; ++bag) {
      Tensor out =
          bag ? embedding_bag(idx, w, offsets, EmbeddingBagFuncOptions()) : embedding(idx, w);
      ASSERT_EQ(out.shape(), (Shape{n, dim}));
      // An output of the size the last one had reuses its memory (but after the release).
      if (previous != nullptr) {
        EXPECT_EQ(out.data<float>(), previous) << "round " << round;
      }
      previous = out.data<float>();
      for (std::int64_t i = 0; i < n; ++i) {
        const std::int64_t k = idx.data<std::int64_t>()[i];
        ASSERT_EQ(std::memcmp(out.data<float>() + i * dim, w.data<float>() + k * dim,
                              static_cast<std::size_t>(dim) * sizeof(float)),
                  0)
            << "round " << round << ", bag " << bag << ", position " << i;
      }
      std::memset(out.data<float>(), 0xff, out.nbytes());  // NaN bits before it is freed
    }
    if (round == 1) {
      release_cached_memory();
      previous = nullptr;
    }
  }
}

}  // namespace
}  // namespace emb
