// Moving tensors between emb and libtorch, and comparing them bitwise or within ulps.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>

#include "emb/emb.h"

namespace emb::testing {

inline at::ScalarType to_torch(DType d) {
  switch (d) {
    case DType::kFloat32:
      return at::kFloat;
    case DType::kFloat64:
      return at::kDouble;
    case DType::kFloat16:
      return at::kHalf;
    case DType::kBFloat16:
      return at::kBFloat16;
    case DType::kInt32:
      return at::kInt;
    case DType::kInt64:
      return at::kLong;
    case DType::kInt8:
      return at::kChar;
    case DType::kUInt8:
      return at::kByte;
  }
  return at::kFloat;
}

inline DType from_torch(at::ScalarType s) {
  switch (s) {
    case at::kFloat:
      return DType::kFloat32;
    case at::kDouble:
      return DType::kFloat64;
    case at::kHalf:
      return DType::kFloat16;
    case at::kBFloat16:
      return DType::kBFloat16;
    case at::kInt:
      return DType::kInt32;
    case at::kLong:
      return DType::kInt64;
    default:
      throw std::runtime_error("unsupported torch dtype");
  }
}

/// A torch copy of an emb tensor (same bits; 16-bit types share their encodings).
inline torch::Tensor to_torch(const Tensor& t) {
  std::vector<int64_t> shape(t.shape().begin(), t.shape().end());
  torch::Tensor out = torch::empty(shape, torch::TensorOptions().dtype(to_torch(t.dtype())));
  if (t.nbytes()) std::memcpy(out.data_ptr(), t.raw_data(), t.nbytes());
  return out;
}

/// An emb copy of a torch tensor (made contiguous first).
inline Tensor from_torch(const torch::Tensor& t) {
  torch::Tensor c = t.contiguous();
  Tensor out =
      Tensor::empty(Shape(c.sizes().begin(), c.sizes().end()), from_torch(c.scalar_type()));
  if (out.nbytes()) std::memcpy(out.raw_data(), c.data_ptr(), out.nbytes());
  return out;
}

/// Distance in units in the last place between two values of the tensor's dtype, computed on
/// their bit patterns (0 when bitwise equal; NaN == NaN counts as 0).
inline std::int64_t ulp_distance(const Tensor& t, const void* a, const void* b) {
  auto ordered = [](std::int64_t bits, int width) {
    const std::int64_t sign = std::int64_t{1} << (width - 1);
    return (bits & sign) ? -(bits & (sign - 1)) : bits;
  };
  std::int64_t x = 0, y = 0;
  int width = static_cast<int>(element_size(t.dtype()) * 8);
  std::memcpy(&x, a, element_size(t.dtype()));
  std::memcpy(&y, b, element_size(t.dtype()));
  if (width == 64) {
    const double da = std::bit_cast<double>(x), db = std::bit_cast<double>(y);
    if (std::isnan(da) && std::isnan(db)) return 0;
    if (da == db) return x == y ? 0 : 1;  // +0 vs -0
    // clamp to avoid overflow on far-apart values
    const long double d = static_cast<long double>(ordered(x, 64)) - ordered(y, 64);
    return d > 1e15 || d < -1e15 ? std::int64_t{1} << 50 : static_cast<std::int64_t>(std::fabs(d));
  }
  x &= (std::int64_t{1} << width) - 1;
  y &= (std::int64_t{1} << width) - 1;
  const double va =
      t.dtype() == DType::kFloat32   ? std::bit_cast<float>(static_cast<std::uint32_t>(x))
      : t.dtype() == DType::kFloat16 ? float(Half::from_bits(static_cast<std::uint16_t>(x)))
                                     : float(BFloat16::from_bits(static_cast<std::uint16_t>(x)));
  const double vb =
      t.dtype() == DType::kFloat32   ? std::bit_cast<float>(static_cast<std::uint32_t>(y))
      : t.dtype() == DType::kFloat16 ? float(Half::from_bits(static_cast<std::uint16_t>(y)))
                                     : float(BFloat16::from_bits(static_cast<std::uint16_t>(y)));
  if (std::isnan(va) && std::isnan(vb)) return 0;
  if (va == vb) return x == y ? 0 : 1;
  return std::llabs(ordered(x, width) - ordered(y, width));
}

/// Success when ours and theirs have the same shape and dtype and every element is within
/// max_ulps (0 = bitwise). The failure names the first bad position and both values.
inline ::testing::AssertionResult close_ulps(const Tensor& ours, const torch::Tensor& theirs_t,
                                             std::int64_t max_ulps, std::int64_t* worst = nullptr) {
  const Tensor theirs = from_torch(theirs_t);
  if (ours.shape() != theirs.shape() || ours.dtype() != theirs.dtype()) {
    return ::testing::AssertionFailure()
           << "shape/dtype differ: ours " << shape_to_string(ours.shape()) << " "
           << dtype_name(ours.dtype()) << ", torch " << shape_to_string(theirs.shape()) << " "
           << dtype_name(theirs.dtype());
  }
  const std::size_t es = element_size(ours.dtype());
  const auto* a = static_cast<const std::byte*>(ours.raw_data());
  const auto* b = static_cast<const std::byte*>(theirs.raw_data());
  std::int64_t max_seen = 0;
  for (std::int64_t i = 0; i < ours.numel(); ++i) {
    const std::int64_t d = is_integral(ours.dtype())
                               ? (std::memcmp(a + i * es, b + i * es, es) == 0 ? 0 : 1 << 30)
                               : ulp_distance(ours, a + i * es, b + i * es);
    max_seen = std::max(max_seen, d);
    if (d > max_ulps) {
      std::ostringstream s;
      s.precision(17);
      s << "element " << i << ": ours " << ours.get_double(i) << ", torch " << theirs.get_double(i)
        << " (" << d << " ulps > " << max_ulps << ")";
      return ::testing::AssertionFailure() << s.str();
    }
  }
  if (worst) *worst = std::max(*worst, max_seen);
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult bitwise_equal(const Tensor& ours, const torch::Tensor& theirs) {
  return close_ulps(ours, theirs, 0);
}

/// A value that stresses the arithmetic, representable in dtype: a subnormal, +-inf, NaN, the
/// largest finite value (either sign), or a normal value with an exponent anywhere in the
/// dtype's range.
inline double extreme_value(std::mt19937_64& rng, DType dtype) {
  const bool f64 = dtype == DType::kFloat64, f32 = dtype == DType::kFloat32;
  const bool f16 = dtype == DType::kFloat16;
  const double denorm_min = f64   ? std::numeric_limits<double>::denorm_min()
                            : f32 ? std::numeric_limits<float>::denorm_min()
                            : f16 ? 0x1p-24
                                  : 0x1p-133;
  const double largest = f64   ? std::numeric_limits<double>::max()
                         : f32 ? std::numeric_limits<float>::max()
                         : f16 ? 65504.0
                               : 0x1.FEp127;
  const int max_exp = f64 ? 1023 : f16 ? 15 : 127;
  const double sign = rng() % 2 ? -1.0 : 1.0;
  switch (rng() % 6) {
    case 0:  // subnormal: a small multiple of the smallest one
      return sign * denorm_min * static_cast<double>(1 + rng() % 100);
    case 1:
      return sign * std::numeric_limits<double>::infinity();
    case 2:
      return std::numeric_limits<double>::quiet_NaN();
    case 3:
      return sign * largest;
    default: {  // wide exponent
      std::uniform_int_distribution<int> e(-max_exp + 1, max_exp - 1);
      std::uniform_real_distribution<double> m(1.0, 2.0);
      return sign * std::ldexp(m(rng), e(rng));
    }
  }
}

/// Replaces each element of a floating tensor by an extreme_value with probability fraction.
inline void sprinkle_extremes(std::mt19937_64& rng, const Tensor& t, double fraction) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    if (u(rng) < fraction) t.set_double(i, extreme_value(rng, t.dtype()));
  }
}

/// The BLAS library mapped into this process (libtorch's), from /proc/self/maps; empty if none.
inline std::string loaded_blas() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const std::size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    const std::string file = path.substr(path.rfind('/') + 1);
    if (file.find("blas") != std::string::npos || file.find("mkl") != std::string::npos ||
        file.find("blis") != std::string::npos) {
      return path;
    }
  }
  return {};
}

/// Success when libtorch runs on the reference BLAS (Debian's libblas3): the per_sample_weights
/// gradient is a BLAS dot product, and only the reference BLAS sums it in the order emb does.
inline ::testing::AssertionResult uses_reference_blas() {
  const std::string blas = loaded_blas();
  const bool reference = blas.find("/blas/libblas.so") != std::string::npos &&
                         blas.find("openblas") == std::string::npos;
  if (reference) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "libtorch loaded " << (blas.empty() ? std::string("no BLAS") : blas)
         << ", not the reference BLAS (libblas3) that the parity suite is defined against; run "
            "scripts/setup-deps.sh, which selects it with update-alternatives "
            "(libblas.so.3-x86_64-linux-gnu -> /usr/lib/x86_64-linux-gnu/blas/libblas.so.3)";
}

}  // namespace emb::testing
