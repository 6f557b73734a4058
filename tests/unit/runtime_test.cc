// The runtime settings: thread count and SIMD target, from the API and from the environment.
#include "emb/runtime.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "emb/embedding.h"
#include "emb/error.h"
#include "emb/tensor.h"
#include "expect_error.h"
#include "runtime_internal.h"

namespace {

using emb::testing::expect_error;

TEST(Runtime, NumThreadsRoundTripsAndRejectsZero) {
  const int saved = emb::get_num_threads();
  EXPECT_GE(saved, 1);
  emb::set_num_threads(3);
  EXPECT_EQ(emb::get_num_threads(), 3);
  expect_error<emb::ValueError>([] { emb::set_num_threads(0); }, {"set_num_threads: n = 0"});
  EXPECT_EQ(emb::get_num_threads(), 3);  // a refused call changes nothing
  emb::set_num_threads(saved);
}

TEST(Runtime, SimdTargetNamesAndErrors) {
  const std::vector<std::string> targets = emb::simd_targets_available();
  ASSERT_FALSE(targets.empty());
  EXPECT_EQ(targets.back(), "scalar");
  emb::set_simd_target("scalar");
  EXPECT_EQ(emb::simd_target(), "scalar");
  expect_error<emb::ValueError>([] { emb::set_simd_target("avx9"); },
                                {"set_simd_target(\"avx9\")", "unknown SIMD target", "scalar"});
  EXPECT_EQ(emb::simd_target(), "scalar");
  emb::set_simd_target("native");
  EXPECT_EQ(emb::simd_target(), targets.front());
}

TEST(Runtime, EnvironmentVariables) {
  ::setenv("EMB_SIMD", "scalar", 1);
  ::setenv("EMB_NUM_THREADS", "2", 1);
  emb::detail::reset_runtime_settings();
  EXPECT_EQ(emb::simd_target(), "scalar");
  EXPECT_EQ(emb::get_num_threads(), 2);

  ::setenv("EMB_SIMD", "avx9", 1);
  ::setenv("EMB_NUM_THREADS", "two", 1);
  emb::detail::reset_runtime_settings();
  expect_error<emb::ValueError>([] { emb::simd_target(); }, {"EMB_SIMD=avx9", "unknown"});
  expect_error<emb::ValueError>([] { emb::get_num_threads(); },
                                {"EMB_NUM_THREADS=two", "positive number of threads"});

  // A lookup that would renormalize rows in place refuses before writing anything.
  const emb::Tensor weight = emb::Tensor::full({4, 3}, 2.0, emb::DType::kFloat32);
  const emb::Tensor before = weight.clone();
  const emb::Tensor ids = emb::Tensor::from_vector<std::int64_t>({1, 2}, {2});
  emb::detail::reset_runtime_settings();
  expect_error<emb::ValueError>(
      [&] { emb::embedding(ids, weight, emb::EmbeddingFuncOptions().max_norm(1.0)); },
      {"EMB_NUM_THREADS=two"});
  EXPECT_TRUE(weight.equal(before));

  ::unsetenv("EMB_NUM_THREADS");
  ::setenv("OMP_NUM_THREADS", "3,1", 1);
  emb::detail::reset_runtime_settings();
  EXPECT_EQ(emb::get_num_threads(), 3);

  ::unsetenv("EMB_SIMD");
  ::unsetenv("OMP_NUM_THREADS");
  emb::detail::reset_runtime_settings();
  EXPECT_EQ(emb::simd_target(), emb::simd_targets_available().front());
}

}  // namespace
