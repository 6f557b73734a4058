// Row-wise quantized tables: FBGEMM's layout, the error bound against float32, and lookups and
// bags equal to pooling the dequantized table.
#include "emb/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "emb/embedding.h"
#include "emb/embedding_bag.h"
#include "emb/io/safetensors.h"
#include "expect_error.h"
#include "io_test_util.h"

namespace emb {
namespace {

using emb::testing::expect_error;

Tensor random_table(std::int64_t rows, std::int64_t dim, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> mag(-6.0f, 6.0f);
  Tensor t = Tensor::empty({rows, dim}, DType::kFloat32);
  float* x = t.data<float>();
  for (std::int64_t r = 0; r < rows; ++r) {
    const float scale = std::pow(10.0f, mag(rng) / 2);  // rows of very different magnitudes
    const float shift = normal(rng) * scale;
    for (std::int64_t d = 0; d < dim; ++d) x[r * dim + d] = shift + normal(rng) * scale;
    if (r % 11 == 5) std::fill(x + r * dim, x + (r + 1) * dim, shift);  // a constant row
  }
  return t;
}

float load_f32(const std::uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

float load_f16(const std::uint8_t* p) {
  std::uint16_t b;
  std::memcpy(&b, p, 2);
  return static_cast<float>(Half::from_bits(b));
}

TEST(Quant, TheRowLayoutIsFbgemms) {
  // int8: [q...][f32 scale][f32 bias]; row [1, 256] -> scale 1, bias 1, q [0, 255].
  const QuantizedTable q8 =
      quantize_rowwise(Tensor::from_vector<float>({1.0f, 256.0f}, {1, 2}), QuantType::kInt8);
  ASSERT_EQ(q8.data.shape(), (Shape{1, 10}));
  const auto* b8 = q8.data.data<std::uint8_t>();
  EXPECT_EQ(b8[0], 0);
  EXPECT_EQ(b8[1], 255);
  EXPECT_EQ(load_f32(b8 + 2), 1.0f);
  EXPECT_EQ(load_f32(b8 + 6), 1.0f);
  // int4: two codes per byte, element 0 in the low nibble; [f16 scale][f16 bias].
  const QuantizedTable q4 =
      quantize_rowwise(Tensor::from_vector<float>({-1.0f, 14.0f, 0.0f}, {1, 3}), QuantType::kInt4);
  ASSERT_EQ(q4.data.shape(), (Shape{1, 6}));
  const auto* b4 = q4.data.data<std::uint8_t>();
  EXPECT_EQ(b4[0], 0xf0);  // codes 0 (low) and 15 (high)
  EXPECT_EQ(b4[1], 0x01);  // code 1, high nibble unused
  EXPECT_EQ(load_f16(b4 + 2), 1.0f);
  EXPECT_EQ(load_f16(b4 + 4), -1.0f);
  EXPECT_EQ(quantized_row_bytes(QuantType::kInt8, 100), 108);
  EXPECT_EQ(quantized_row_bytes(QuantType::kInt4, 101), 55);
  EXPECT_TRUE(dequantize(q4).equal(Tensor::from_vector<float>({-1.0f, 14.0f, 0.0f}, {1, 3})));
}

TEST(Quant, ErrorIsAtMostHalfAStepPlusTheStoredScaleAndBiasRounding) {
  for (std::int64_t dim : {1, 3, 7, 8, 15, 16, 17, 64, 129}) {
    const Tensor w = random_table(40, dim, static_cast<std::uint32_t>(dim));
    for (QuantType type : {QuantType::kInt8, QuantType::kInt4}) {
      const QuantizedTable q = quantize_rowwise(w, type);
      const Tensor deq = dequantize(q);
      const std::int64_t rb = quantized_row_bytes(type, dim);
      for (std::int64_t r = 0; r < 40; ++r) {
        const float* x = w.data<float>() + r * dim;
        const float lo = *std::min_element(x, x + dim);
        const float hi = *std::max_element(x, x + dim);
        const std::uint8_t* row = q.data.data<std::uint8_t>() + r * rb;
        double bound;
        if (type == QuantType::kInt8) {
          const float scale = load_f32(row + dim);
          EXPECT_EQ(load_f32(row + dim + 4), lo);
          // half a step; the float32 scale and the 1e-8 in FBGEMM's inverse shift it by ulps.
          bound = 0.5 * scale + 1e-6 * (std::fabs(lo) + std::fabs(hi));
        } else {
          const float scale = load_f16(row + (dim + 1) / 2);
          const float bias = load_f16(row + (dim + 1) / 2 + 2);
          const double exact_scale = (static_cast<double>(hi) - bias) / 15.0;
          // half a step + 15 x the float16 scale's rounding + the float16 bias's rounding
          bound = hi == bias ? std::fabs(static_cast<double>(lo) - bias) + 1e-6 * std::fabs(lo)
                             : 0.5 * scale + 15.0 * std::fabs(exact_scale - scale) +
                                   std::fabs(static_cast<double>(lo) - bias) +
                                   1e-6 * (std::fabs(lo) + std::fabs(hi));
        }
        for (std::int64_t d = 0; d < dim; ++d) {
          const double err = std::fabs(static_cast<double>(deq.at<float>(r, d)) - x[d]);
          ASSERT_LE(err, bound) << quant_type_name(type) << " dim " << dim << " row " << r
                                << " col " << d << " value " << x[d];
        }
      }
    }
  }
}

TEST(Quant, LookupsAndEveryBagModeEqualPoolingTheDequantizedTable) {
  std::mt19937 rng(7);
  for (std::int64_t dim : {1, 3, 8, 17, 64}) {
    const std::int64_t rows = 50;
    const Tensor w = random_table(rows, dim, static_cast<std::uint32_t>(100 + dim));
    for (QuantType type : {QuantType::kInt8, QuantType::kInt4}) {
      const QuantizedTable q = quantize_rowwise(w, type);
      const Tensor deq = dequantize(q);
      std::uniform_int_distribution<std::int64_t> id(0, rows - 1);
      std::vector<std::int64_t> ids(40);
      for (auto& v : ids) v = id(rng);
      ids[3] = ids[4] = ids[5];  // duplicates
      const Tensor ids64 = Tensor::from_vector<std::int64_t>(ids, {40});
      const Tensor ids32 = ids64.to(DType::kInt32);
      EXPECT_TRUE(quantized_embedding(ids64.reshape({5, 8}), q)
                      .equal(embedding(ids64.reshape({5, 8}), deq)));
      const Tensor offsets = Tensor::from_vector<std::int64_t>({0, 0, 7, 20, 20, 33}, {6});
      std::vector<float> psw_values(40);
      for (auto& v : psw_values) v = std::uniform_real_distribution<float>(-2, 2)(rng);
      const Tensor psw = Tensor::from_vector<float>(psw_values, {40});
      for (EmbeddingBagMode mode :
           {EmbeddingBagMode::kSum, EmbeddingBagMode::kMean, EmbeddingBagMode::kMax}) {
        for (std::optional<std::int64_t> pad :
             {std::optional<std::int64_t>{}, std::optional<std::int64_t>{ids[5]}}) {
          for (bool last : {false, true}) {
            EmbeddingBagFuncOptions o;
            o.mode(mode).include_last_offset(last);
            if (pad) o.padding_idx(*pad);
            const Tensor off =
                last ? Tensor::from_vector<std::int64_t>({0, 0, 7, 20, 20, 33, 40}, {7}) : offsets;
            for (const Tensor& in : {ids64, ids32}) {
              const Tensor got = quantized_embedding_bag(in, q, off, o);
              ASSERT_TRUE(got.equal(embedding_bag(in, deq, off, o)))
                  << quant_type_name(type) << " dim " << dim << " mode " << mode_name(mode);
            }
            if (mode == EmbeddingBagMode::kSum) {
              ASSERT_TRUE(quantized_embedding_bag(ids64, q, off, o, psw)
                              .equal(embedding_bag(ids64, deq, off, o, psw)));
            }
          }
        }
        // 2-D input: one bag per row.
        EmbeddingBagFuncOptions o;
        o.mode(mode);
        ASSERT_TRUE(quantized_embedding_bag(ids64.reshape({8, 5}), q, {}, o)
                        .equal(embedding_bag(ids64.reshape({8, 5}), deq, {}, o)));
      }
    }
  }
}

TEST(Quant, ErrorsAreThoseOfEmbeddingBagAndChangeNothing) {
  const Tensor w = random_table(10, 4, 1);
  const QuantizedTable q = quantize_rowwise(w, QuantType::kInt8);
  const Tensor before = q.data.clone();
  const Tensor ids = Tensor::from_vector<std::int64_t>({1, 10}, {2});
  const Tensor off = Tensor::from_vector<std::int64_t>({0}, {1});
  expect_error<IndexError>([&] { (void)quantized_embedding_bag(ids, q, off); },
                           {"quantized_embedding_bag", "input[1] = 10", "10 rows"});
  expect_error<IndexError>([&] { (void)quantized_embedding(ids, q); }, "quantized_embedding");
  expect_error<NotImplementedError>(
      [&] { (void)quantized_embedding_bag(ids, q, off, EmbeddingBagFuncOptions().max_norm(1.0)); },
      "max_norm");
  expect_error<NotImplementedError>(
      [&] {
        (void)quantized_embedding_bag(Tensor::from_vector<std::int64_t>({1, 2}, {2}), q, off,
                                      EmbeddingBagFuncOptions().mode(EmbeddingBagMode::kMean),
                                      Tensor::from_vector<float>({1, 1}, {2}));
      },
      "per_sample_weights");
  expect_error<ValueError>(
      [&] { (void)quantized_embedding_bag(ids, q, Tensor::from_vector<std::int64_t>({1}, {1})); },
      "offsets[0] = 1");
  EXPECT_TRUE(q.data.equal(before));
  const float nan = std::nanf("");
  expect_error<ValueError>(
      [&] {
        (void)quantize_rowwise(Tensor::from_vector<float>({1, nan}, {1, 2}), QuantType::kInt8);
      },
      "weight[0][1] = nan is not finite");
  expect_error<ValueError>(
      [&] {
        (void)quantize_rowwise(Tensor::from_vector<float>({-1e6f, 1}, {1, 2}), QuantType::kInt4);
      },
      "float16");
  QuantizedTable bad = q;
  bad.dim = 5;
  expect_error<ValueError>([&] { (void)dequantize(bad); }, "take 13 bytes, the data has 12");
}

TEST(Quant, QuantizedTablesLiveInSafetensorsAndServeFromAMapping) {
  emb::testing::TempDir dir;
  const Tensor w = random_table(30, 9, 3);
  const QuantizedTable q4 = quantize_rowwise(w, QuantType::kInt4);
  const QuantizedTable q8 = quantize_rowwise(w, QuantType::kInt8);
  const std::string path = dir.file("q.safetensors");
  io::write_safetensors(path, {{"t4", q4.data}, {"t8", q8.data}},
                        {quantized_metadata("t4", q4), quantized_metadata("t8", q8)});
  const io::TensorFile f = io::read_safetensors(path, io::Access::kMap);
  EXPECT_EQ(f.metadata.at("emb.quant.t4"), "int4:9");
  const auto m4 = quantized_from_metadata(f.at("t4"), "t4", f.metadata, path);
  const auto m8 = quantized_from_metadata(f.at("t8"), "t8", f.metadata, path);
  ASSERT_TRUE(m4 && m8);
  EXPECT_TRUE(m4->data.is_read_only());
  const Tensor ids = Tensor::from_vector<std::int64_t>({0, 29, 4}, {3});
  const Tensor off = Tensor::from_vector<std::int64_t>({0, 1}, {2});
  EXPECT_TRUE(quantized_embedding_bag(ids, *m4, off).equal(quantized_embedding_bag(ids, q4, off)));
  EXPECT_TRUE(quantized_embedding_bag(ids, *m8, off).equal(quantized_embedding_bag(ids, q8, off)));
  EXPECT_FALSE(quantized_from_metadata(f.at("t4"), "other", f.metadata, path));
  // A mark that lies about the dim is a FormatError naming the file.
  std::map<std::string, std::string> lying = {{"emb.quant.t4", "int4:12"}};
  expect_error<FormatError>([&] { (void)quantized_from_metadata(f.at("t4"), "t4", lying, path); },
                            {"q.safetensors", "t4", "take 10 bytes, the data has 9"});
  lying["emb.quant.t4"] = "int3:9";
  expect_error<FormatError>([&] { (void)quantized_from_metadata(f.at("t4"), "t4", lying, path); },
                            "is not \"int8:<dim>\"");
}

}  // namespace
}  // namespace emb
