// embedding_out and embedding_bag_out: the same bits as embedding() / embedding_bag() on the same
// inputs, written into the caller's tensor; every bad out (undefined, dtype, shape, read-only,
// sharing memory with an input) and every bad input throws before anything is written.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "emb/embedding.h"
#include "emb/embedding_bag.h"
#include "expect_error.h"

namespace emb {
namespace {

using emb::testing::expect_error;

Tensor random_table(std::int64_t rows, std::int64_t dim, DType dtype, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Tensor w = Tensor::empty({rows, dim}, DType::kFloat64);
  for (std::int64_t i = 0; i < w.numel(); ++i) w.data<double>()[i] = normal(rng);
  return w.to(dtype);
}

Tensor random_ids(const Shape& shape, std::int64_t rows, DType dtype, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> row(0, rows - 1);
  Tensor t = Tensor::empty(shape, DType::kInt64);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<std::int64_t>()[i] = row(rng);
  return t.to(dtype);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

// An out tensor full of a sentinel, so that "nothing written" can be checked.
Tensor sentinel(const Shape& shape, DType dtype) {
  return Tensor::full(shape, 12345.0, dtype);
}

TEST(EmbeddingOut, SameBitsAsEmbedding) {
  for (DType dt : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16}) {
    for (DType it : {DType::kInt32, DType::kInt64}) {
      const Tensor w = random_table(50, 7, dt, 1);
      for (const Shape& shape : {Shape{1}, Shape{20}, Shape{3, 4}, Shape{0}}) {
        const Tensor ids = random_ids(shape, 50, it, 2);
        Shape out_shape = shape;
        out_shape.push_back(7);
        Tensor out = sentinel(out_shape, dt);
        embedding_out(ids, w, out);
        EXPECT_TRUE(same_bits(out, embedding(ids, w))) << dtype_name(dt);
        // padding_idx does not change the forward; max_norm renormalizes the same rows.
        const auto opts = EmbeddingFuncOptions().padding_idx(3).max_norm(1.5).norm_type(2.0);
        Tensor w1 = w.clone(), w2 = w.clone();
        embedding_out(ids, w1, out, opts);
        EXPECT_TRUE(same_bits(out, embedding(ids, w2, opts)));
        EXPECT_TRUE(same_bits(w1, w2));
      }
    }
  }
}

TEST(EmbeddingBagOut, SameBitsAsEmbeddingBag) {
  const Tensor w = random_table(40, 9, DType::kFloat32, 3);
  const Tensor ids = random_ids({30}, 40, DType::kInt64, 4);
  const Tensor offsets = Tensor::from_vector<std::int64_t>({0, 5, 5, 12, 29}, {5});
  const Tensor psw = random_table(1, 30, DType::kFloat32, 5).reshape({30});
  for (EmbeddingBagMode mode :
       {EmbeddingBagMode::kSum, EmbeddingBagMode::kMean, EmbeddingBagMode::kMax}) {
    for (bool pad : {false, true}) {
      auto o = EmbeddingBagFuncOptions().mode(mode);
      if (pad) o.padding_idx(ids.data<std::int64_t>()[0]);
      Tensor out = sentinel({5, 9}, DType::kFloat32);
      embedding_bag_out(ids, w, offsets, out, o);
      EXPECT_TRUE(same_bits(out, embedding_bag(ids, w, offsets, o))) << int(mode) << pad;
      if (mode == EmbeddingBagMode::kSum) {
        embedding_bag_out(ids, w, offsets, out, o, psw);
        EXPECT_TRUE(same_bits(out, embedding_bag(ids, w, offsets, o, psw))) << "psw " << pad;
      }
    }
  }
  // 2-D input (each row a bag), one bag of 256 ids, max_norm.
  const Tensor ids2 = random_ids({6, 4}, 40, DType::kInt32, 6);
  Tensor out2 = sentinel({6, 9}, DType::kFloat32);
  embedding_bag_out(ids2, w, {}, out2);
  EXPECT_TRUE(same_bits(out2, embedding_bag(ids2, w)));
  const Tensor big = random_ids({256}, 40, DType::kInt64, 7);
  const Tensor zero = Tensor::from_vector<std::int64_t>({0}, {1});
  Tensor one = sentinel({1, 9}, DType::kFloat32);
  embedding_bag_out(big, w, zero, one);
  EXPECT_TRUE(same_bits(one, embedding_bag(big, w, zero)));
  const auto mn = EmbeddingBagFuncOptions().max_norm(2.0);
  Tensor w1 = w.clone(), w2 = w.clone();
  embedding_bag_out(big, w1, zero, one, mn);
  EXPECT_TRUE(same_bits(one, embedding_bag(big, w2, zero, mn)));
  EXPECT_TRUE(same_bits(w1, w2));
}

// Calls fn, which must throw E mentioning every needle, and checks that out and weight kept
// their bits.
template <typename E, typename Fn>
void rejects(Fn&& fn, const Tensor& out, const Tensor& weight,
             const std::vector<std::string>& needles) {
  const Tensor out_before = out.defined() ? out.clone() : Tensor();
  const Tensor weight_before = weight.clone();
  expect_error<E>(fn, needles);
  if (out.defined()) {
    EXPECT_TRUE(same_bits(out, out_before)) << needles.front();
  }
  EXPECT_TRUE(same_bits(weight, weight_before)) << needles.front();
}

TEST(EmbeddingOut, BadOutOrInputWritesNothing) {
  Tensor w = random_table(10, 4, DType::kFloat32, 8);
  const Tensor ids = Tensor::from_vector<std::int64_t>({1, 9, 1}, {3});
  const auto mn = EmbeddingFuncOptions().max_norm(0.1);  // would rewrite rows 1 and 9
  Tensor out = sentinel({3, 4}, DType::kFloat32);
  rejects<ValueError>([&] { embedding_out(ids, w, Tensor(), mn); }, Tensor(), w,
                      {"embedding_out", "out is undefined"});
  const Tensor f64 = sentinel({3, 4}, DType::kFloat64);
  rejects<ValueError>([&] { embedding_out(ids, w, f64, mn); }, f64, w,
                      {"embedding_out", "dtype float64", "float32"});
  const Tensor wrong = sentinel({3, 5}, DType::kFloat32);
  rejects<ValueError>([&] { embedding_out(ids, w, wrong, mn); }, wrong, w,
                      {"embedding_out", "[3, 5]", "[3, 4]"});
  const Tensor flat = sentinel({12}, DType::kFloat32);
  rejects<ValueError>([&] { embedding_out(ids, w, flat, mn); }, flat, w, {"[12]", "[3, 4]"});
  const Tensor ro = out.read_only("a mapped file");
  rejects<ValueError>([&] { embedding_out(ids, w, ro, mn); }, ro, w,
                      {"embedding_out", "read-only"});
  // out inside the weight (rows 2..4) and over the ids' memory.
  const Tensor in_weight = Tensor::view(w.data<float>() + 8, {3, 4}, DType::kFloat32);
  rejects<ValueError>([&] { embedding_out(ids, w, in_weight, mn); }, in_weight, w,
                      {"embedding_out", "shares memory with weight"});
  Tensor ids_buf = Tensor::zeros({12}, DType::kInt64);
  const Tensor ids_view = Tensor::view(ids_buf.raw_data(), {3}, DType::kInt64);
  const Tensor over_ids = Tensor::view(ids_buf.raw_data(), {3, 4}, DType::kFloat32);
  rejects<ValueError>([&] { embedding_out(ids_view, w, over_ids, mn); }, over_ids, w,
                      {"embedding_out", "shares memory with indices"});
  // A bad id, a bad padding_idx: nothing written either.
  const Tensor bad = Tensor::from_vector<std::int64_t>({1, 10, 1}, {3});
  rejects<IndexError>([&] { embedding_out(bad, w, out, mn); }, out, w,
                      {"embedding_out", "indices[1] = 10"});
  rejects<IndexError>(
      [&] { embedding_out(ids, w, out, EmbeddingFuncOptions().padding_idx(10)); }, out, w,
      {"embedding_out", "padding_idx = 10"});
}

TEST(EmbeddingBagOut, BadOutOrInputWritesNothing) {
  Tensor w = random_table(10, 4, DType::kFloat32, 9);
  const Tensor ids = Tensor::from_vector<std::int64_t>({1, 9, 1, 2}, {4});
  const Tensor offsets = Tensor::from_vector<std::int64_t>({0, 2}, {2});
  const Tensor psw = Tensor::full({4}, 0.5, DType::kFloat32);
  const auto mn = EmbeddingBagFuncOptions().max_norm(0.1);
  Tensor out = sentinel({2, 4}, DType::kFloat32);
  rejects<ValueError>([&] { embedding_bag_out(ids, w, offsets, Tensor(), mn); }, Tensor(), w,
                      {"embedding_bag_out", "out is undefined"});
  const Tensor wrong = sentinel({3, 4}, DType::kFloat32);
  rejects<ValueError>([&] { embedding_bag_out(ids, w, offsets, wrong, mn); }, wrong, w,
                      {"embedding_bag_out", "[3, 4]", "[2, 4]"});
  const Tensor f16 = sentinel({2, 4}, DType::kFloat16);
  rejects<ValueError>([&] { embedding_bag_out(ids, w, offsets, f16, mn); }, f16, w,
                      {"embedding_bag_out", "dtype float16"});
  const Tensor ro = out.read_only("a mapped file");
  rejects<ValueError>([&] { embedding_bag_out(ids, w, offsets, ro, mn); }, ro, w, {"read-only"});
  const Tensor in_weight = Tensor::view(w.data<float>() + 4, {2, 4}, DType::kFloat32);
  rejects<ValueError>([&] { embedding_bag_out(ids, w, offsets, in_weight, mn); }, in_weight, w,
                      {"embedding_bag_out", "shares memory with weight"});
  const auto sum = EmbeddingBagFuncOptions().mode(EmbeddingBagMode::kSum);
  Tensor buf = Tensor::zeros({8}, DType::kFloat32);  // psw in the first 4 floats, out over all 8
  const Tensor psw_view = Tensor::view(buf.raw_data(), {4}, DType::kFloat32);
  psw_view.copy_(psw);
  const Tensor over_psw = Tensor::view(buf.raw_data(), {2, 4}, DType::kFloat32);
  rejects<ValueError>(
      [&] { embedding_bag_out(ids, w, offsets, over_psw, sum, psw_view); },
      over_psw, w, {"embedding_bag_out", "shares memory with per_sample_weights"});
  Tensor ibuf = Tensor::zeros({8}, DType::kInt64);
  const Tensor off_view = Tensor::view(ibuf.raw_data(), {2}, DType::kInt64);
  const Tensor over_offsets = Tensor::view(ibuf.raw_data(), {2, 4}, DType::kFloat32);
  rejects<ValueError>([&] { embedding_bag_out(ids, w, off_view, over_offsets, mn); },
                      over_offsets, w, {"embedding_bag_out", "shares memory with offsets"});
  const Tensor bad = Tensor::from_vector<std::int64_t>({1, 9, 11, 2}, {4});
  rejects<IndexError>([&] { embedding_bag_out(bad, w, offsets, out, mn); }, out, w,
                      {"embedding_bag_out", "11"});
}

}  // namespace
}  // namespace emb
