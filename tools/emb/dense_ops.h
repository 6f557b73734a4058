// The output layer's inner loops, SIMD (Highway, the best target the CPU has) with results that
// do not depend on the target: the dot product keeps eight partial sums in a fixed order on every
// target, and the row updates are elementwise (a product rounded, then added: never fused).
#pragma once

#include <cstdint>

namespace emb_cli {

/// a · b, as eight running sums s[k] (from +0) over the elements k, k+8, k+16, ... (a product
/// rounded, then added; n padded with zeros to a multiple of 8), combined as
/// ((s0+s4) + (s1+s5)) + ((s2+s6) + (s3+s7)).
float dot(const float* a, const float* b, std::int64_t n);

/// x[d] += g * y[d] and u[d] += g * v[d] for d < n (each product rounded, then added).
void axpy2(float g, const float* y, float* x, const float* v, float* u, std::int64_t n);

/// The same, one element at a time in plain C++: what the SIMD versions must equal bit for bit.
float dot_ref(const float* a, const float* b, std::int64_t n);
void axpy2_ref(float g, const float* y, float* x, const float* v, float* u, std::int64_t n);

/// Runs f once per SIMD target compiled in that this CPU supports, with that target forced
/// (for the tests); returns how many targets ran.
int for_each_dense_target(void (*f)(void* ctx), void* ctx);

}  // namespace emb_cli
