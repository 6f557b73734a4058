#include "emb/tensor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "emb/dtype.h"
#include "emb/runtime.h"

namespace emb {
namespace {

// ---------------------------------------------------------------------------------------------
// 16-bit floats

TEST(Half, KnownEncodings) {
  EXPECT_EQ(Half(1.0f).bits, 0x3c00);
  EXPECT_EQ(Half(-2.0f).bits, 0xc000);
  EXPECT_EQ(Half(65504.0f).bits, 0x7bff);                      // largest finite
  EXPECT_EQ(Half(65519.0f).bits, 0x7bff);                      // rounds down
  EXPECT_EQ(Half(65520.0f).bits, 0x7c00);                      // rounds to inf
  EXPECT_EQ(Half(std::ldexp(1.0f, -24)).bits, 0x0001);         // smallest subnormal
  EXPECT_EQ(Half(std::ldexp(1.0f, -25)).bits, 0x0000);         // tie -> even (0)
  EXPECT_EQ(Half(std::ldexp(3.0f, -25)).bits, 0x0002);         // tie -> even (2)
  EXPECT_EQ(Half(1.0f + std::ldexp(1.0f, -11)).bits, 0x3c00);  // tie -> even
  EXPECT_EQ(Half(1.0f + std::ldexp(3.0f, -11)).bits, 0x3c02);
  EXPECT_EQ(Half(std::numeric_limits<float>::quiet_NaN()).bits & 0x7fff, 0x7e00);
  EXPECT_EQ(Half(-std::numeric_limits<float>::infinity()).bits, 0xfc00);
}

TEST(Half, EveryEncodingRoundTripsThroughFloat) {
  for (std::uint32_t b = 0; b < 0x10000; ++b) {
    const Half h = Half::from_bits(static_cast<std::uint16_t>(b));
    const float f = h;
    if (std::isnan(f)) continue;
    EXPECT_EQ(Half(f).bits, b) << "bits " << b;
  }
}

TEST(BFloat16, RoundsToNearestEven) {
  EXPECT_EQ(BFloat16(1.0f).bits, 0x3f80);
  EXPECT_EQ(BFloat16(1.0f + std::ldexp(1.0f, -8)).bits, 0x3f80);  // tie -> even
  EXPECT_EQ(BFloat16(1.0f + std::ldexp(3.0f, -8)).bits, 0x3f82);  // tie -> even (up)
  EXPECT_EQ(BFloat16(std::numeric_limits<float>::quiet_NaN()).bits, 0x7fc0);
  EXPECT_EQ(float(BFloat16::from_bits(0x4049)), 3.140625f);
}

TEST(DType, SizesAndNames) {
  EXPECT_EQ(element_size(DType::kFloat16), 2u);
  EXPECT_EQ(element_size(DType::kInt64), 8u);
  EXPECT_EQ(dtype_name(DType::kBFloat16), "bfloat16");
  EXPECT_TRUE(is_floating(DType::kFloat16));
  EXPECT_FALSE(is_floating(DType::kInt32));
}

// ---------------------------------------------------------------------------------------------
// Tensor storage

TEST(Tensor, ConstructionAndAccess) {
  const Tensor t = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(t.dim(), 2);
  EXPECT_EQ(t.size(0), 2);
  EXPECT_EQ(t.size(-1), 3);
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.nbytes(), 24u);
  EXPECT_EQ(t.at<float>(1, 2), 6.0f);
  t.at<float>(0, 1) = 9;
  EXPECT_EQ(t.data<float>()[1], 9.0f);
  EXPECT_THROW(t.at<float>(2, 0), IndexError);
  EXPECT_THROW(t.at<float>(0), IndexError);
  EXPECT_THROW(t.data<double>(), ValueError);
  EXPECT_THROW(t.size(2), IndexError);
  EXPECT_EQ(Tensor::scalar<std::int64_t>(7).dim(), 0);
  EXPECT_EQ(Tensor::scalar<std::int64_t>(7).numel(), 1);
  EXPECT_EQ(Tensor::zeros({2, 0, 3}, DType::kFloat32).numel(), 0);
  EXPECT_THROW(Tensor::empty({-1, 3}, DType::kFloat32), ValueError);
  EXPECT_THROW(Tensor::empty({std::int64_t{1} << 40, std::int64_t{1} << 40}, DType::kFloat32),
               ValueError);
  EXPECT_THROW(Tensor::from_vector<float>({1, 2, 3}, {2, 2}), ValueError);
  EXPECT_FALSE(Tensor().defined());
  EXPECT_THROW(Tensor().dtype(), ValueError);
}

TEST(Tensor, CopiesShareStorageCloneDoesNot) {
  const Tensor a = Tensor::zeros({3}, DType::kFloat64);
  const Tensor b = a;  // shares
  const Tensor c = a.clone();
  b.at<double>(1) = 5;
  EXPECT_EQ(a.at<double>(1), 5.0);
  EXPECT_EQ(c.at<double>(1), 0.0);
  EXPECT_TRUE(a.shares_storage_with(b));
  EXPECT_FALSE(a.shares_storage_with(c));
  const Tensor row = Tensor::zeros({4, 2}, DType::kFloat32).select(3);
  EXPECT_EQ(row.shape(), (Shape{2}));
}

// Big copies are split over the library's threads, and from 16 MiB on written with streaming
// stores; overlapping ones still move as memmove does.
TEST(Tensor, BigCloneAndCopyAreExactAtEveryThreadCount) {
  const int saved = get_num_threads();
  const std::int64_t rows = 70001, dim = 67;  // ~17.9 MiB, not a whole number of 2 MiB pieces
  Tensor src = Tensor::empty({rows, dim}, DType::kFloat32);
  for (std::int64_t i = 0; i < rows * dim; ++i) src.data<float>()[i] = static_cast<float>(i);
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    EXPECT_TRUE(src.clone().equal(src)) << threads;
    const Tensor dst = Tensor::zeros({rows, dim}, DType::kFloat32);
    dst.copy_(src);
    EXPECT_TRUE(dst.equal(src)) << threads;
    // Into a destination 4 bytes off a vector boundary (the streaming stores start later).
    std::vector<float> raw(static_cast<std::size_t>(rows * dim + 1), -1.0f);
    const Tensor off = Tensor::view(raw.data() + 1, {rows, dim}, DType::kFloat32);
    off.copy_(src);
    EXPECT_TRUE(off.equal(src)) << threads;
    EXPECT_EQ(raw[0], -1.0f);
    // Overlapping: rows [1, rows) of a buffer copied onto rows [0, rows - 1) of the same one.
    const Tensor buf = src.clone();
    const Tensor lo = Tensor::view(buf.data<float>(), {rows - 1, dim}, DType::kFloat32);
    const Tensor hi = Tensor::view(buf.data<float>() + dim, {rows - 1, dim}, DType::kFloat32);
    lo.copy_(hi);
    for (std::int64_t i = 0; i < (rows - 1) * dim; i += 997) {
      ASSERT_EQ(buf.data<float>()[i], static_cast<float>(i + dim)) << threads << " " << i;
    }
    EXPECT_EQ(buf.data<float>()[(rows - 1) * dim - 1], static_cast<float>(rows * dim - 1));
  }
  set_num_threads(saved);
}

TEST(Tensor, ViewsCallerMemoryWithoutCopy) {
  std::vector<float> buffer = {1, 2, 3, 4};
  const Tensor v = Tensor::view(buffer.data(), {2, 2}, DType::kFloat32);
  EXPECT_FALSE(v.owns_memory());
  EXPECT_EQ(v.raw_data(), buffer.data());
  v.at<float>(1, 1) = 40;
  EXPECT_EQ(buffer[3], 40.0f);
  const Tensor row = v.select(1);
  row.fill_(7);
  EXPECT_EQ(buffer[2], 7.0f);
  EXPECT_THROW(Tensor::view(nullptr, {2}, DType::kFloat32), ValueError);
}

TEST(Tensor, ReshapeConvertCompare) {
  const Tensor t = Tensor::from_vector<std::int32_t>({1, -2, 3, 4}, {4});
  const Tensor r = t.reshape({2, 2});
  EXPECT_TRUE(r.shares_storage_with(t));
  EXPECT_EQ(r.at<std::int32_t>(1, 0), 3);
  EXPECT_THROW(t.reshape({3}), ValueError);
  const Tensor h = t.to(DType::kFloat16);
  EXPECT_EQ(float(h.at<Half>(1)), -2.0f);
  EXPECT_EQ(h.to(DType::kInt64).at<std::int64_t>(3), 4);
  EXPECT_TRUE(t.equal(t.clone()));
  EXPECT_FALSE(t.equal(t.to(DType::kInt64)));
  // -0 and +0 differ bitwise; NaN equals itself bitwise.
  const Tensor z = Tensor::from_vector<float>({0.0f}, {1});
  const Tensor nz = Tensor::from_vector<float>({-0.0f}, {1});
  EXPECT_FALSE(z.equal(nz));
  const Tensor nan = Tensor::from_vector<float>({std::nanf("")}, {1});
  EXPECT_TRUE(nan.equal(nan.clone()));
  EXPECT_THROW(Tensor::zeros({1}, DType::kInt32).fill_(std::nan("")), ValueError);
  // a failed converting copy leaves the destination as it was
  const Tensor dst = Tensor::full({3}, 7.0, DType::kInt32);
  EXPECT_THROW(dst.copy_(Tensor::from_vector<float>({1, 2, std::nanf("")}, {3})), ValueError);
  EXPECT_TRUE(dst.equal(Tensor::full({3}, 7.0, DType::kInt32)));
}

// ---------------------------------------------------------------------------------------------
// Printing: each expected string is what PyTorch 1.13 prints for the same tensor.

Tensor iota_float(std::int64_t n, double scale, double divisor, Shape shape) {
  Tensor t = Tensor::empty(shape, DType::kFloat32);
  for (std::int64_t i = 0; i < n; ++i) {
    t.data<float>()[i] =
        static_cast<float>(i) * static_cast<float>(scale) / static_cast<float>(divisor);
  }
  return t;
}

TEST(TensorPrint, MatchesPyTorch) {
  EXPECT_EQ(Tensor::from_vector<float>({1, 2.3f, 3, 4, 5.1f, 6.3f}, {2, 3}).to_string(),
            "tensor([[1.0000, 2.3000, 3.0000],\n        [4.0000, 5.1000, 6.3000]])");
  EXPECT_EQ(
      Tensor::from_vector<float>({-0.5249f, 1.0863f, 1.6412f, 1.7894f, -1.5931f, -1.1443f}, {2, 3})
          .to_string(),
      "tensor([[-0.5249,  1.0863,  1.6412],\n        [ 1.7894, -1.5931, -1.1443]])");
  EXPECT_EQ(Tensor::from_vector<float>({1, 2, 3}, {3}).to_string(), "tensor([1., 2., 3.])");
  EXPECT_EQ(Tensor::from_vector<float>({0, 0}, {2}).to_string(), "tensor([0., 0.])");
  EXPECT_EQ(Tensor::scalar<float>(3.5f).to_string(), "tensor(3.5000)");
  EXPECT_EQ(Tensor::from_vector<float>({1e-5f, 1.0f}, {2}).to_string(),
            "tensor([1.0000e-05, 1.0000e+00])");
  EXPECT_EQ(Tensor::from_vector<float>({1e9f, 1.0f}, {2}).to_string(),
            "tensor([1.0000e+09, 1.0000e+00])");
  EXPECT_EQ(Tensor::from_vector<float>({std::nanf(""), INFINITY, -1.5f}, {3}).to_string(),
            "tensor([    nan,     inf, -1.5000])");
  EXPECT_EQ(Tensor::from_vector<std::int64_t>({1, 2, 300}, {3}).to_string(),
            "tensor([  1,   2, 300])");
  EXPECT_EQ(
      Tensor::from_vector<std::int64_t>({9007199254740993, INT64_MAX, INT64_MIN}, {3}).to_string(),
      "tensor([    9007199254740993,  9223372036854775807, -9223372036854775808])");
  EXPECT_EQ(Tensor::from_vector<std::int32_t>({1, 2, -3}, {3}).to_string(),
            "tensor([ 1,  2, -3], dtype=torch.int32)");
  EXPECT_EQ(Tensor::from_vector<double>({1.5, 2.25}, {1, 2}).to_string(),
            "tensor([[1.5000, 2.2500]], dtype=torch.float64)");
  EXPECT_EQ(Tensor::from_vector<float>({1.5f, 2.0f}, {2}).to(DType::kFloat16).to_string(),
            "tensor([1.5000, 2.0000], dtype=torch.float16)");
  EXPECT_EQ(Tensor::zeros({0, 3}, DType::kFloat32).to_string(), "tensor([], size=(0, 3))");
  EXPECT_EQ(Tensor::zeros({0}, DType::kFloat32).to_string(), "tensor([])");
  EXPECT_EQ(Tensor::zeros({0}, DType::kInt64).to_string(), "tensor([], dtype=torch.int64)");
  EXPECT_EQ(iota_float(30, 1, 7, {2, 3, 5}).to_string(),
            "tensor([[[0.0000, 0.1429, 0.2857, 0.4286, 0.5714],\n"
            "         [0.7143, 0.8571, 1.0000, 1.1429, 1.2857],\n"
            "         [1.4286, 1.5714, 1.7143, 1.8571, 2.0000]],\n\n"
            "        [[2.1429, 2.2857, 2.4286, 2.5714, 2.7143],\n"
            "         [2.8571, 3.0000, 3.1429, 3.2857, 3.4286],\n"
            "         [3.5714, 3.7143, 3.8571, 4.0000, 4.1429]]])");
  EXPECT_EQ(iota_float(40, 1, 3, {40}).to_string(),
            "tensor([ 0.0000,  0.3333,  0.6667,  1.0000,  1.3333,  1.6667,  2.0000,  2.3333,\n"
            "         2.6667,  3.0000,  3.3333,  3.6667,  4.0000,  4.3333,  4.6667,  5.0000,\n"
            "         5.3333,  5.6667,  6.0000,  6.3333,  6.6667,  7.0000,  7.3333,  7.6667,\n"
            "         8.0000,  8.3333,  8.6667,  9.0000,  9.3333,  9.6667, 10.0000, 10.3333,\n"
            "        10.6667, 11.0000, 11.3333, 11.6667, 12.0000, 12.3333, 12.6667, 13.0000])");
}

TEST(TensorPrint, SummarizesLargeTensorsLikePyTorch) {
  EXPECT_EQ(iota_float(2000, 1, 1, {40, 50}).to_string(),
            "tensor([[0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 4.7000e+01, 4.8000e+01,\n"
            "         4.9000e+01],\n"
            "        [5.0000e+01, 5.1000e+01, 5.2000e+01,  ..., 9.7000e+01, 9.8000e+01,\n"
            "         9.9000e+01],\n"
            "        [1.0000e+02, 1.0100e+02, 1.0200e+02,  ..., 1.4700e+02, 1.4800e+02,\n"
            "         1.4900e+02],\n"
            "        ...,\n"
            "        [1.8500e+03, 1.8510e+03, 1.8520e+03,  ..., 1.8970e+03, 1.8980e+03,\n"
            "         1.8990e+03],\n"
            "        [1.9000e+03, 1.9010e+03, 1.9020e+03,  ..., 1.9470e+03, 1.9480e+03,\n"
            "         1.9490e+03],\n"
            "        [1.9500e+03, 1.9510e+03, 1.9520e+03,  ..., 1.9970e+03, 1.9980e+03,\n"
            "         1.9990e+03]])");
  EXPECT_EQ(iota_float(1500, 1.5, 1, {1500}).to_string(),
            "tensor([0.0000e+00, 1.5000e+00, 3.0000e+00,  ..., 2.2455e+03, 2.2470e+03,\n"
            "        2.2485e+03])");
}

}  // namespace
}  // namespace emb
