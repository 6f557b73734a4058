#include "emb/generator.h"

#include <cmath>
#include <numbers>

namespace emb {

namespace {

std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

}  // namespace

void Generator::manual_seed(std::uint64_t seed) {
  seed_ = seed;
  std::uint64_t x = seed;
  for (auto& s : s_) s = splitmix64(x);
  has_spare_ = false;
}

std::uint64_t Generator::next_u64() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Generator::uniform() {
  return static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
}

double Generator::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  const double u1 = 1.0 - uniform();  // (0, 1], safe for log
  const double u2 = uniform();
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * std::numbers::pi * u2;
  spare_ = radius * std::sin(theta);
  has_spare_ = true;
  return radius * std::cos(theta);
}

void Generator::normal_(const Tensor& t, double mean, double std) {
  if (!t.defined()) throw ValueError("Generator::normal_: tensor is undefined");
  if (!is_floating(t.dtype())) {
    throw ValueError("Generator::normal_: tensor dtype " + std::string(dtype_name(t.dtype())) +
                     " is not floating point");
  }
  for (std::int64_t i = 0; i < t.numel(); ++i) t.set_double(i, mean + std * normal());
}

Generator& default_generator() {
  static Generator gen;
  return gen;
}

void manual_seed(std::uint64_t seed) {
  default_generator().manual_seed(seed);
}

}  // namespace emb
