// emb/generator.h — a seedable random generator for parameter initialization.
//
// Reproducible: the same seed gives the same bits (xoshiro256**, fixed) and the same uniforms
// everywhere; normal() adds Box-Muller through the C library's log, sin and cos, so its last
// bits can differ between C libraries (std::normal_distribution promises even less). Not
// PyTorch's generator: a table initialized by emb and one initialized by torch.manual_seed(s)
// differ in their values.
#pragma once

#include <cstdint>

#include "emb/tensor.h"

namespace emb {

class Generator {
 public:
  static constexpr std::uint64_t kDefaultSeed = 67280421310721ULL;  // PyTorch's default seed

  explicit Generator(std::uint64_t seed = kDefaultSeed) { manual_seed(seed); }
  void manual_seed(std::uint64_t seed);
  std::uint64_t seed() const { return seed_; }

  /// Next 64 random bits (xoshiro256**).
  std::uint64_t next_u64();
  /// Uniform double in [0, 1) with 53 random bits.
  double uniform();
  /// Standard normal N(0, 1) (Box-Muller on two uniforms).
  double normal();
  /// Fills a floating tensor in place with N(mean, std) values, rounded to its dtype.
  void normal_(const Tensor& t, double mean = 0.0, double std = 1.0);

 private:
  std::uint64_t seed_ = 0;
  std::uint64_t s_[4] = {};
  bool has_spare_ = false;
  double spare_ = 0.0;
};

/// The process-wide generator used when none is given (like torch's default CPU generator).
/// Not thread-safe: seed it and use it from one thread, or pass your own Generator.
Generator& default_generator();
/// Reseeds the default generator: emb::manual_seed(0) ~ torch.manual_seed(0).
void manual_seed(std::uint64_t seed);

}  // namespace emb
