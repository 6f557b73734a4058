// The optimizer row kernels (kernels/optim_rows.h) against their scalar ref twins, bit for bit:
// on every SIMD target this CPU has, at 1, 2 and 3 threads, float32 and float64 (the dtypes the
// optimizers accept), dims around the vector widths, with duplicate rows, per-entry scales,
// scale_grad_by_freq, maximize and weight decay; the shared sums of squares of RowWiseAdagrad's
// bag-step path included. And the row grouping against a stable comparison sort.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "emb/runtime.h"
#include "kernel_sweep.h"
#include "kernels/optim_rows.h"
#include "kernels/ref/optim_ref.h"
#include "row_groups.h"
#include "runtime_internal.h"

namespace {

using namespace emb;
namespace fast = emb::detail::fast;
namespace ref = emb::detail::ref;
using detail::SparseRows;

constexpr std::int64_t kDims[] = {1, 3, 7, 8, 15, 16, 17, 64, 129};
constexpr int kThreads[] = {1, 2, 3};

// Runs body(dim, seed) for every dim: on every target at 1 thread, and on the best target at
// 1, 2 and 3 threads (small inputs split over threads too).
template <typename Body>
void sweep(Body&& body) {
  test::sweep_kernels(kDims, body, test::SweepThreads::kBestTargetOnly);
}

template <typename T>
std::vector<T> random_values(std::mt19937_64& rng, std::size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(u(rng));
  return v;
}

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// same_bits, except that any two NaNs match: when both operands of an addition are NaN, which
// one's payload and sign the result carries depends on the order the compiler gives the operands
// (x86 returns the first), which neither C++ nor PyTorch fixes; a NaN against a number still
// fails.
template <typename T>
bool same_bits_any_nan(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0 && !(std::isnan(a[i]) && std::isnan(b[i]))) {
      return false;
    }
  }
  return true;
}

// A grouped gradient: entries over `rows` table rows (duplicates when rows is small), each entry
// reading one of `sources` grad rows; plus a table and its state. Guard rows beyond the table.
template <typename T>
struct Case {
  detail::RowGroups groups;
  std::vector<std::int64_t> src;
  std::vector<T> grad, scale, w, sum;
  std::int64_t dim, table_rows, sources;

  Case(std::mt19937_64& rng, std::int64_t d, std::int64_t rows, std::int64_t entries,
       std::int64_t sources_, std::int64_t state_width)
      : dim(d), table_rows(rows), sources(sources_) {
    std::uniform_int_distribution<std::int64_t> row(0, rows - 1);
    std::uniform_int_distribution<std::int64_t> source(0, sources - 1);
    std::vector<std::int64_t> ids(static_cast<std::size_t>(entries));
    for (auto& id : ids) id = row(rng);
    groups = detail::group_by_row(ids.data(), entries, rows, -1);
    src.resize(groups.positions.size());
    for (auto& s : src) s = source(rng);
    grad = random_values<T>(rng, static_cast<std::size_t>(sources * dim), -2.0f, 2.0f);
    if (grad.size() > 4) grad[1] = T(-0.0);  // a signed zero
    scale = random_values<T>(rng, src.size(), 0.1f, 3.0f);
    w = random_values<T>(rng, static_cast<std::size_t>((rows + 1) * dim), -1.0f, 1.0f);
    sum = random_values<T>(rng, static_cast<std::size_t>((rows + 1) * state_width), 0.0f, 2.0f);
  }

  SparseRows rows(bool scaled, bool freq, bool maximize) const {
    return {std::is_same_v<T, double> ? DType::kFloat64 : DType::kFloat32,
            dim,
            grad.data(),
            sources,
            static_cast<std::int64_t>(groups.rows.size()),
            groups.rows.data(),
            groups.starts.data(),
            src.data(),
            scaled ? scale.data() : nullptr,
            freq,
            maximize};
  }
};

// Few table rows (every row repeated) or many (mostly rows of one entry, whose gradient is the grad
// row itself), alternating over the sweep.
std::int64_t table_rows(std::uint64_t seed) {
  return seed % 2 ? 7 : 600;
}

template <typename T>
class OptimKernels : public ::testing::Test {};
using ParamTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(OptimKernels, ParamTypes);

// Every combination of the gradient's options, for one kernel call `run(rows, w, sum, fast)`.
template <typename T, typename Run>
void check_variants(const Case<T>& c, Run&& run) {
  for (bool scaled : {false, true}) {
    for (bool freq : {false, true}) {
      for (bool maximize : {false, true}) {
        SCOPED_TRACE("scaled=" + std::to_string(scaled) + " freq=" + std::to_string(freq) +
                     " maximize=" + std::to_string(maximize));
        const SparseRows rows = c.rows(scaled, freq, maximize);
        std::vector<T> wf = c.w, sf = c.sum, wr = c.w, sr = c.sum;
        run(rows, wf.data(), sf.data(), true);
        run(rows, wr.data(), sr.data(), false);
        EXPECT_TRUE(same_bits(wf, wr)) << "weight";
        EXPECT_TRUE(same_bits(sf, sr)) << "state";
        EXPECT_FALSE(same_bits(wf, c.w)) << "the kernel changed nothing";
      }
    }
  }
}

TYPED_TEST(OptimKernels, RowWiseAdagradMatchesRef) {
  using T = TypeParam;
  sweep([](std::int64_t dim, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    // Few table rows (duplicates), and many table rows over few grad rows (the shared sums,
    // computed sixteen grad rows at a time: fewer than 16, and 16s and the rest); many groups in
    // batches of 16 and the rest.
    for (const auto& shape : {std::tuple<std::int64_t, std::int64_t, std::int64_t>{7, 60, 40},
                              {600, 60, 13},
                              {600, 150, 37},
                              {900, 140, 200}}) {
      const auto [rows, entries, sources] = shape;
      const Case<T> c(rng, dim, rows, entries, sources, 1);
      for (double wd : {0.0, 0.25}) {
        SCOPED_TRACE("rows=" + std::to_string(rows) + " sources=" + std::to_string(sources) +
                     " wd=" + std::to_string(wd));
        const detail::RowWiseAdagradHyper h{0.1, 1e-10, wd};
        check_variants(c, [&](const SparseRows& r, T* w, T* sum, bool use_fast) {
          if (use_fast) {
            fast::rowwise_adagrad_rows(r, h, w, sum);
          } else {
            ref::rowwise_adagrad_rows(r, h, w, sum);
          }
        });
      }
    }
  });
}

TYPED_TEST(OptimKernels, AdagradMatchesRef) {
  using T = TypeParam;
  sweep([](std::int64_t dim, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    const Case<T> c(rng, dim, table_rows(seed), 60, 40, dim);
    const detail::AdagradHyper h{0.07, 1e-10};
    check_variants(c, [&](const SparseRows& r, T* w, T* sum, bool use_fast) {
      if (use_fast) {
        fast::adagrad_rows(r, h, w, sum);
      } else {
        ref::adagrad_rows(r, h, w, sum);
      }
    });
  });
}

TYPED_TEST(OptimKernels, SgdMatchesRef) {
  using T = TypeParam;
  sweep([](std::int64_t dim, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    const Case<T> c(rng, dim, table_rows(seed), 60, 40, 1);
    const detail::SgdHyper h{0.3};
    check_variants(c, [&](const SparseRows& r, T* w, T*, bool use_fast) {
      if (use_fast) {
        fast::sgd_rows(r, h, w);
      } else {
        ref::sgd_rows(r, h, w);
      }
    });
  });
}

// Adam's constants for a step: L2 (Adam) or decoupled (AdamW) weight decay, amsgrad, maximize.
std::vector<detail::AdamHyper> adam_variants() {
  std::vector<detail::AdamHyper> out;
  for (int v = 0; v < 4; ++v) {
    detail::AdamHyper h{};
    h.maximize = v == 3;
    h.l2 = v == 1;
    h.decoupled = v == 2 || v == 3;
    h.amsgrad = v >= 2;
    h.wd = 0.1;
    h.decay = 1 - 0.01 * 0.1;
    h.beta1 = 0.9;
    h.one_minus_beta1 = 1 - 0.9;
    h.beta2 = 0.999;
    h.one_minus_beta2 = 1 - 0.999;
    h.bc2_sqrt = std::sqrt(1 - 0.999 * 0.999);
    h.eps = 1e-8;
    h.neg_step_size = -(0.01 / (1 - 0.9 * 0.9));
    out.push_back(h);
  }
  return out;
}

TYPED_TEST(OptimKernels, LazyAdamMatchesRef) {
  using T = TypeParam;
  sweep([](std::int64_t dim, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    const Case<T> c(rng, dim, table_rows(seed), 60, 40, dim);
    const std::vector<T> m0 = random_values<T>(rng, c.sum.size(), -1.0f, 1.0f);
    std::vector<T> vmax0 = random_values<T>(rng, c.sum.size(), 0.0f, 2.0f);
    vmax0[0] = std::numeric_limits<T>::quiet_NaN();  // torch.maximum keeps a NaN
    for (const detail::AdamHyper& h : adam_variants()) {
      SCOPED_TRACE("l2=" + std::to_string(h.l2) + " decoupled=" + std::to_string(h.decoupled) +
                   " amsgrad=" + std::to_string(h.amsgrad));
      for (bool maximize : {false, true}) {
        for (bool freq : {false, true}) {
          const SparseRows r = c.rows(true, freq, maximize);
          std::vector<T> wf = c.w, mf = m0, vf = c.sum, xf = vmax0;
          std::vector<T> wr = c.w, mr = m0, vr = c.sum, xr = vmax0;
          T* xfp = h.amsgrad ? xf.data() : nullptr;
          T* xrp = h.amsgrad ? xr.data() : nullptr;
          fast::adam_rows(r, h, wf.data(), mf.data(), vf.data(), xfp);
          ref::adam_rows(r, h, wr.data(), mr.data(), vr.data(), xrp);
          EXPECT_TRUE(same_bits(wf, wr) && same_bits(mf, mr) && same_bits(vf, vr) &&
                      same_bits(xf, xr))
              << "maximize=" << maximize << " freq=" << freq;
          EXPECT_FALSE(same_bits(wf, c.w));
        }
      }
    }
  });
}

TYPED_TEST(OptimKernels, SparseAdamMatchesRef) {
  using T = TypeParam;
  sweep([](std::int64_t dim, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    const Case<T> c(rng, dim, table_rows(seed), 60, 40, 2 * dim);  // sum holds m and s side by side
    const detail::SparseAdamHyper h{0.1, 0.001, 1e-8, -0.03};
    check_variants(c, [&](const SparseRows& r, T* w, T* ms, bool use_fast) {
      // m rows at ms, s rows after them: rows of width dim in two [rows + 1, dim] blocks.
      T* m = ms;
      T* sq = ms + (c.table_rows + 1) * dim;
      if (use_fast) {
        fast::sparse_adam_rows(r, h, w, m, sq);
      } else {
        ref::sparse_adam_rows(r, h, w, m, sq);
      }
    });
  });
}

// Dense updates: every element, split over threads in element ranges.
TYPED_TEST(OptimKernels, DenseUpdatesMatchRef) {
  using T = TypeParam;
  sweep([](std::int64_t dim, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    const std::int64_t n = dim * 37;  // RowWiseAdagrad: 37 rows, sixteen at a time
    const std::vector<T> grad = random_values<T>(rng, static_cast<std::size_t>(n), -2.0f, 2.0f);
    const std::vector<T> w0 = random_values<T>(rng, grad.size(), -1.0f, 1.0f);
    const std::vector<T> a0 = random_values<T>(rng, grad.size(), 0.0f, 1.0f);
    const std::vector<T> b0 = random_values<T>(rng, grad.size(), 0.0f, 1.0f);
    const DType dt = std::is_same_v<T, double> ? DType::kFloat64 : DType::kFloat32;
    for (const detail::AdamHyper& h : adam_variants()) {
      std::vector<T> wf = w0, mf = a0, vf = b0, xf = a0, wr = w0, mr = a0, vr = b0, xr = a0;
      fast::adam_dense(dt, h, n, grad.data(), wf.data(), mf.data(), vf.data(),
                       h.amsgrad ? xf.data() : nullptr);
      ref::adam_dense(dt, h, n, grad.data(), wr.data(), mr.data(), vr.data(),
                      h.amsgrad ? xr.data() : nullptr);
      EXPECT_TRUE(same_bits(wf, wr) && same_bits(mf, mr) && same_bits(vf, vr) && same_bits(xf, xr))
          << "adam l2=" << h.l2 << " decoupled=" << h.decoupled << " amsgrad=" << h.amsgrad;
      EXPECT_FALSE(same_bits(wf, w0));
    }
    for (double wd : {0.0, 0.2}) {
      for (bool maximize : {false, true}) {
        const detail::AdagradDenseHyper h{0.05, 1e-10, wd, maximize};
        std::vector<T> wf = w0, sf = a0, wr = w0, sr = a0;
        fast::adagrad_dense(dt, h, n, grad.data(), wf.data(), sf.data());
        ref::adagrad_dense(dt, h, n, grad.data(), wr.data(), sr.data());
        EXPECT_TRUE(same_bits(wf, wr) && same_bits(sf, sr))
            << "adagrad wd=" << wd << " maximize=" << maximize;
        EXPECT_FALSE(same_bits(wf, w0));
        // RowWiseAdagrad over 37 rows of dim.
        const detail::RowWiseAdagradHyper rh{0.05, 1e-10, wd};
        std::vector<T> rwf = w0, rsf = a0, rwr = w0, rsr = a0;
        fast::rowwise_adagrad_dense(dt, rh, maximize, 37, dim, grad.data(), rwf.data(), rsf.data());
        ref::rowwise_adagrad_dense(dt, rh, maximize, 37, dim, grad.data(), rwr.data(), rsr.data());
        EXPECT_TRUE(same_bits(rwf, rwr) && same_bits(rsf, rsr))
            << "rowwise adagrad wd=" << wd << " maximize=" << maximize;
        EXPECT_FALSE(same_bits(rwf, w0));
      }
    }
    // SGD: plain, momentum (first step and later), dampening, nesterov, weight decay, maximize.
    const std::vector<detail::SgdDenseHyper> sgd = {
        {0.1, 0.0, 0.0, 0.0, false, false, false},
        {0.1, 0.9, 0.0, 0.0, false, false, true},
        {0.1, 0.9, 0.3, 0.01, false, true, false},
        {0.1, 0.9, 0.0, 0.02, true, false, false},
    };
    for (const detail::SgdDenseHyper& h : sgd) {
      std::vector<T> wf = w0, bf = a0, wr = w0, br = a0;
      T* bfp = h.momentum != 0.0 ? bf.data() : nullptr;
      T* brp = h.momentum != 0.0 ? br.data() : nullptr;
      fast::sgd_dense(dt, h, n, grad.data(), wf.data(), bfp);
      ref::sgd_dense(dt, h, n, grad.data(), wr.data(), brp);
      EXPECT_TRUE(same_bits(wf, wr) && same_bits(bf, br))
          << "sgd momentum=" << h.momentum << " nesterov=" << h.nesterov << " first=" << h.first;
      EXPECT_FALSE(same_bits(wf, w0));
    }
  });
}

// An element of T with the given bits (NaN payloads).
template <typename T>
T from_bits(std::uint64_t bits) {
  T x;
  if constexpr (sizeof(T) == 8) {
    std::memcpy(&x, &bits, sizeof(T));
  } else {
    const auto b = static_cast<std::uint32_t>(bits);
    std::memcpy(&x, &b, sizeof(T));
  }
  return x;
}

// Signed zeros, infinities, subnormals, quiet and signaling NaNs of several payloads and signs.
template <typename T>
std::vector<T> special_values(bool signaling) {
  using L = std::numeric_limits<T>;
  const bool d = sizeof(T) == 8;
  std::vector<T> v = {T(0.0),
                      T(-0.0),
                      L::infinity(),
                      -L::infinity(),
                      L::quiet_NaN(),
                      -L::quiet_NaN(),
                      L::denorm_min(),
                      -L::denorm_min(),
                      L::max(),
                      T(1.5),
                      T(-2.25),
                      L::min(),
                      from_bits<T>(d ? 0x7FF8000000000123 : 0x7FC00123),
                      from_bits<T>(d ? 0xFFFC0000000000A5 : 0xFFE000A5)};
  if (signaling) {
    v.push_back(from_bits<T>(d ? 0x7FF0000000000001 : 0x7F800001));
    v.push_back(from_bits<T>(d ? 0xFFF4000000000777 : 0xFFA00777));
  }
  return v;
}

// Dense SGD and Adagrad on the values where a step that skipped "untouched" elements would go
// wrong (but for a signaling NaN left unquieted, which any-NaN matching lets through): gradients with rows of +0, of -0, of +0 with one -0 or one nonzero element, and random
// rows; weights (and Adagrad's sums and SGD's momentum buffers) with signed zeros, infinities,
// subnormals, negative sums and NaNs (quiet and signaling, several payloads): every element must
// be the twin's update, bit for bit (a NaN: any NaN, see same_bits_any_nan).
TYPED_TEST(OptimKernels, DenseUpdatesOfSpecialValuesMatchRef) {
  using T = TypeParam;
  sweep([](std::int64_t dim, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    const std::int64_t rows = 60;  // every combination of the row kinds below
    const auto n = static_cast<std::size_t>(rows * dim);
    const std::vector<T> quiet = special_values<T>(false), all = special_values<T>(true);
    std::vector<T> grad = random_values<T>(rng, n, -2.0f, 2.0f);
    std::vector<T> w0 = random_values<T>(rng, n, -1.0f, 1.0f);
    std::vector<T> s0 = random_values<T>(rng, n, 0.0f, 2.0f);
    const std::vector<T> sum_specials = {T(0.0),
                                         T(-0.0),
                                         T(-1.0),
                                         std::numeric_limits<T>::max(),
                                         std::numeric_limits<T>::denorm_min(),
                                         all[4],
                                         all[14],
                                         std::numeric_limits<T>::infinity()};
    std::uniform_int_distribution<std::size_t> pick(0, 1000);
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t e = 0; e < dim; ++e) {
        const auto k = static_cast<std::size_t>(r * dim + e);
        switch (r % 5) {  // gradient row
          case 0:
            grad[k] = T(0.0);
            break;
          case 1:
            grad[k] = T(-0.0);
            break;
          case 2:
            grad[k] = e == r % dim ? T(-0.0) : T(0.0);
            break;
          case 3:
            grad[k] = e == r % dim ? T(0.5) : T(0.0);
            break;
          default:
            break;  // random
        }
        if (r % 3 == 1) w0[k] = quiet[pick(rng) % quiet.size()];  // weight row
        if (r % 3 == 2) w0[k] = all[pick(rng) % all.size()];
        if (r % 4 == 1) s0[k] = T(0.0);  // Adagrad's sum row
        if (r % 4 == 2) s0[k] = sum_specials[pick(rng) % sum_specials.size()];
        if (r % 4 == 3 && e == 0) s0[k] = T(-0.0);
      }
    }
    const DType dt = std::is_same_v<T, double> ? DType::kFloat64 : DType::kFloat32;
    // Plain SGD (with lr 0, and an lr whose negation overflows float), maximize, weight decay,
    // momentum.
    const std::vector<detail::SgdDenseHyper> sgd = {
        {0.1, 0.0, 0.0, 0.0, false, false, false},   {0.0, 0.0, 0.0, 0.0, false, false, false},
        {1e300, 0.0, 0.0, 0.0, false, false, false}, {0.1, 0.0, 0.0, 0.0, false, true, false},
        {0.1, 0.0, 0.0, 0.01, false, false, false},  {0.1, 0.9, 0.0, 0.0, false, false, false},
    };
    for (const detail::SgdDenseHyper& h : sgd) {
      std::vector<T> wf = w0, bf = s0, wr = w0, br = s0;
      T* bfp = h.momentum != 0.0 ? bf.data() : nullptr;
      T* brp = h.momentum != 0.0 ? br.data() : nullptr;
      fast::sgd_dense(dt, h, static_cast<std::int64_t>(n), grad.data(), wf.data(), bfp);
      ref::sgd_dense(dt, h, static_cast<std::int64_t>(n), grad.data(), wr.data(), brp);
      EXPECT_TRUE(same_bits_any_nan(wf, wr) && same_bits_any_nan(bf, br))
          << "sgd lr=" << h.lr << " maximize=" << h.maximize << " wd=" << h.weight_decay
          << " momentum=" << h.momentum;
      EXPECT_FALSE(same_bits(wf, w0));
    }
    // Adagrad: eps > 0 and 0, an lr whose negation overflows float, maximize, weight decay.
    const std::vector<detail::AdagradDenseHyper> adagrad = {
        {0.05, 1e-10, 0.0, false}, {0.05, 0.0, 0.0, false},  {1e300, 1e-10, 0.0, false},
        {0.05, 1e-60, 0.0, false}, {0.05, 1e-10, 0.0, true}, {0.05, 1e-10, 0.2, false},
    };
    for (const detail::AdagradDenseHyper& h : adagrad) {
      std::vector<T> wf = w0, sf = s0, wr = w0, sr = s0;
      fast::adagrad_dense(dt, h, static_cast<std::int64_t>(n), grad.data(), wf.data(), sf.data());
      ref::adagrad_dense(dt, h, static_cast<std::int64_t>(n), grad.data(), wr.data(), sr.data());
      EXPECT_TRUE(same_bits_any_nan(wf, wr) && same_bits_any_nan(sf, sr))
          << "adagrad clr=" << h.clr << " eps=" << h.eps << " maximize=" << h.maximize
          << " wd=" << h.weight_decay;
      EXPECT_FALSE(same_bits(wf, w0));
    }
  });
}

// SGD's momentum over a row-sparse buffer: held slots the gradient misses, held slots it hits,
// new slots; the first step; dampening, nesterov.
TYPED_TEST(OptimKernels, SgdMomentumRowsMatchesRef) {
  using T = TypeParam;
  sweep([](std::int64_t dim, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    const std::int64_t table = 90, used = 50, grads = 30;
    std::vector<std::int64_t> rows(static_cast<std::size_t>(table));
    for (std::size_t k = 0; k < rows.size(); ++k) rows[k] = static_cast<std::int64_t>(k);
    std::shuffle(rows.begin(), rows.end(), rng);
    rows.resize(static_cast<std::size_t>(used));
    const std::vector<T> values =
        random_values<T>(rng, static_cast<std::size_t>(grads * dim), -2.0f, 2.0f);
    const std::vector<T> w0 = random_values<T>(rng, static_cast<std::size_t>(table * dim), -1, 1);
    std::vector<T> b0 = random_values<T>(rng, static_cast<std::size_t>(used * dim), -1.0f, 1.0f);
    b0[0] = T(-0.0);  // μ * -0 stays -0 where no gradient is added
    for (bool first : {false, true}) {
      // first: every slot new and hit; else slots 0..39 held (every third missed), 40..49 new.
      const std::int64_t old_used = first ? 0 : 40;
      std::vector<std::int64_t> grad_of_slot(static_cast<std::size_t>(used), -1);
      std::int64_t j = 0;
      for (std::int64_t s = 0; s < used && j < grads; ++s) {
        if (first || s >= old_used || s % 3 != 0) grad_of_slot[static_cast<std::size_t>(s)] = j++;
      }
      const std::int64_t n_used = first ? j : used;
      const detail::SgdMomentumRows m{std::is_same_v<T, double> ? DType::kFloat64 : DType::kFloat32,
                                      dim,
                                      values.data(),
                                      n_used,
                                      old_used,
                                      rows.data(),
                                      grad_of_slot.data()};
      for (const auto& [damp, nesterov] : {std::pair{0.0, false}, {0.3, false}, {0.0, true}}) {
        SCOPED_TRACE("first=" + std::to_string(first) + " dampening=" + std::to_string(damp) +
                     " nesterov=" + std::to_string(nesterov));
        // maximize and weight_decay are set to show they are left out.
        const detail::SgdDenseHyper h{0.1, 0.9, damp, 0.5, nesterov, true, first};
        std::vector<T> wf = w0, bf = b0, wr = w0, br = b0;
        fast::sgd_momentum_rows(m, h, wf.data(), bf.data());
        ref::sgd_momentum_rows(m, h, wr.data(), br.data());
        EXPECT_TRUE(same_bits(wf, wr)) << "weight";
        EXPECT_TRUE(same_bits(bf, br)) << "buffer";
        EXPECT_FALSE(same_bits(wf, w0));
      }
    }
  });
}

// The ref twin is the optimizers' arithmetic: one row, one entry, computed here by hand.
TEST(OptimKernelsRef, RowWiseAdagradOneRowByHand) {
  const std::vector<double> grad = {3.0, 4.0};
  const std::vector<std::int64_t> rows = {1}, starts = {0, 1}, src = {0};
  const SparseRows r{DType::kFloat64, 2,          grad.data(), 1,     1,    rows.data(),
                     starts.data(),   src.data(), nullptr,     false, false};
  std::vector<double> w = {9, 9, 1.0, 2.0}, sum = {7, 0.5};
  ref::rowwise_adagrad_rows(r, {0.5, 0.0, 0.0}, w.data(), sum.data());
  // sum[1] = 0.5 + (9 + 16) / 2 = 13; mult = 0.5 / sqrt(13)
  const double mult = 0.5 / std::sqrt(13.0);
  EXPECT_EQ(sum[1], 13.0);
  EXPECT_EQ(w[2], 1.0 - mult * 3.0);
  EXPECT_EQ(w[3], 2.0 - mult * 4.0);
  EXPECT_EQ(w[0], 9.0);
  EXPECT_EQ(sum[0], 7.0);
}

// group_by_row against std::stable_sort of (id, position), over tables needing 0 to 4 radix
// passes (and the comparison sort beyond 64 key bits), int32 and int64 ids, with and without a
// skipped id, at 1, 2 and 3 threads.
TEST(RowGroups, MatchesAStableSort) {
  std::mt19937_64 rng(5);
  const int saved_threads = get_num_threads();
  for (std::int64_t rows : {std::int64_t{1}, std::int64_t{9}, std::int64_t{3000},
                            std::int64_t{1} << 33, std::int64_t{1} << 44, std::int64_t{1} << 60}) {
    for (std::int64_t n : {0, 1, 17, 2000}) {
      std::uniform_int_distribution<std::int64_t> id(0, rows - 1);
      std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
      for (auto& x : ids) x = id(rng);
      if (n > 3) ids[3] = ids[0];  // a duplicate whatever the table size
      for (std::int64_t skip : {std::int64_t{-1}, n > 0 ? ids[0] : std::int64_t{-1}}) {
        SCOPED_TRACE("rows=" + std::to_string(rows) + " n=" + std::to_string(n) +
                     " skip=" + std::to_string(skip));
        std::vector<std::pair<std::int64_t, std::int64_t>> expect;
        for (std::int64_t i = 0; i < n; ++i) {
          if (ids[static_cast<std::size_t>(i)] != skip) expect.emplace_back(ids[i], i);
        }
        std::stable_sort(expect.begin(), expect.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
        auto check = [&](const detail::RowGroups& g) {
          ASSERT_EQ(g.positions.size(), expect.size());
          ASSERT_EQ(g.starts.size(), g.rows.size() + 1);
          EXPECT_EQ(g.starts.front(), 0);
          EXPECT_EQ(g.starts.back(), static_cast<std::int64_t>(expect.size()));
          for (std::size_t k = 0; k < g.rows.size(); ++k) {
            EXPECT_LT(g.starts[k], g.starts[k + 1]);
            if (k > 0) {
              EXPECT_LT(g.rows[k - 1], g.rows[k]);
            }
            for (std::int64_t e = g.starts[k]; e < g.starts[k + 1]; ++e) {
              EXPECT_EQ(expect[static_cast<std::size_t>(e)].first, g.rows[k]);
              EXPECT_EQ(expect[static_cast<std::size_t>(e)].second,
                        g.positions[static_cast<std::size_t>(e)]);
            }
          }
        };
        // The chunks of the parallel passes follow the thread count; the order must not.
        detail::set_min_work_per_thread(1);
        for (int threads : kThreads) {
          set_num_threads(threads);
          check(detail::group_by_row(ids.data(), n, rows, skip));
          if (rows <= (std::int64_t{1} << 31)) {
            const std::vector<std::int32_t> ids32(ids.begin(), ids.end());
            check(detail::group_by_row(ids32.data(), n, rows, skip));
          }
        }
        set_num_threads(saved_threads);
        detail::set_min_work_per_thread(std::int64_t{1} << 15);
      }
    }
  }
}

}  // namespace
