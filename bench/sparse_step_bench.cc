// Sparse optimizer steps cost what the batch touched, not the table: one step on 1,000 rows of a
// 10,000,000-row table against the same step on a 10,000-row table (the anchor).
//
//   sparse_step_bench [big_rows=10000000] [dim=64] [repeats=200]
//
// Prints `name  ours  anchor  ratio`: median microseconds of one step() on the big table, on the
// small table (steps on the two interleaved), and their ratio. Before timing, each case checks that
// a step moved exactly the gradient's rows.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "emb/optim.h"

namespace {

using Factory = std::function<std::unique_ptr<emb::optim::Optimizer>(std::vector<emb::Parameter*>)>;

constexpr std::int64_t kBatchRows = 1000;
constexpr std::int64_t kSmallRows = 10000;
constexpr int kGradients = 16;  // distinct batches, cycled

std::vector<emb::SparseGrad> make_batches(std::int64_t rows, std::int64_t dim) {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<std::int64_t> row(0, rows - 1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<emb::SparseGrad> out;
  for (int b = 0; b < kGradients; ++b) {
    std::vector<std::int64_t> ids(kBatchRows);
    for (auto& id : ids) id = row(rng);
    std::vector<float> values(static_cast<std::size_t>(kBatchRows * dim));
    for (auto& v : values) v = normal(rng);
    out.emplace_back(emb::Tensor::from_vector<std::int64_t>(ids, {kBatchRows}),
                     emb::Tensor::from_vector<float>(values, {kBatchRows, dim}), rows);
  }
  return out;
}

// A [rows, dim] float32 table, its optimizer and its batches.
struct Setup {
  std::unique_ptr<emb::Parameter> table;
  std::unique_ptr<emb::optim::Optimizer> opt;
  std::vector<emb::SparseGrad> batches;

  Setup(const Factory& make, std::int64_t rows, std::int64_t dim)
      : table(std::make_unique<emb::Parameter>(
            emb::Tensor::zeros({rows, dim}, emb::DType::kFloat32))),
        opt(make({table.get()})),
        batches(make_batches(rows, dim)) {
    // Correctness first: one step moves the batch's rows and nothing else.
    table->accumulate_grad(batches[0]);
    opt->step();
    std::vector<char> in_batch(static_cast<std::size_t>(rows), 0);
    const emb::Tensor batch_ids = batches[0].indices();  // a copy, kept alive for ids
    const std::int64_t* ids = batch_ids.data<std::int64_t>();
    for (std::int64_t j = 0; j < kBatchRows; ++j) in_batch[static_cast<std::size_t>(ids[j])] = 1;
    const float* w = table->data().data<float>();
    for (std::int64_t r = 0; r < rows; ++r) {
      bool moved = false;
      for (std::int64_t d = 0; d < dim; ++d) moved = moved || w[r * dim + d] != 0.0f;
      if (moved != (in_batch[static_cast<std::size_t>(r)] != 0)) {
        std::fprintf(stderr, "%s: row %lld %s\n", opt->name(), static_cast<long long>(r),
                     moved ? "moved but is not in the batch" : "is in the batch but did not move");
        std::exit(1);
      }
    }
  }

  // Microseconds of one step() on batch i.
  double time_step(int i) {
    opt->zero_grad();
    table->accumulate_grad(batches[static_cast<std::size_t>(i % kGradients)]);
    const auto t0 = std::chrono::steady_clock::now();
    opt->step();
    const auto t1 = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::micro>(t1 - t0).count();
  }
};

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t big_rows = argc > 1 ? std::atoll(argv[1]) : 10000000;
  const std::int64_t dim = argc > 2 ? std::atoll(argv[2]) : 64;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 200;
  using namespace emb::optim;
  const std::vector<std::pair<std::string, Factory>> cases = {
      {"SGD", [](auto p) { return std::make_unique<SGD>(p, SGDOptions(0.1)); }},
      {"Adagrad", [](auto p) { return std::make_unique<Adagrad>(p, AdagradOptions(0.1)); }},
      {"SparseAdam",
       [](auto p) { return std::make_unique<SparseAdam>(p, SparseAdamOptions(0.01)); }},
      {"LazyAdam", [](auto p) { return std::make_unique<LazyAdam>(p, AdamOptions(0.01)); }},
      {"LazyAdamW", [](auto p) { return std::make_unique<LazyAdamW>(p, AdamWOptions(0.01)); }},
      {"RowWiseAdagrad",
       [](auto p) { return std::make_unique<RowWiseAdagrad>(p, RowWiseAdagradOptions(0.1)); }},
  };
  std::printf(
      "# sparse step, %lld rows of dim %lld, float32: %lld-row table (ours) vs %lld-row "
      "table (anchor), median of %d interleaved steps, microseconds\n",
      static_cast<long long>(kBatchRows), static_cast<long long>(dim),
      static_cast<long long>(big_rows), static_cast<long long>(kSmallRows), repeats);
  std::printf("%-28s %10s %10s %7s\n", "name", "ours", "anchor", "ratio");
  for (const auto& [name, make] : cases) {
    Setup small(make, kSmallRows, dim);
    Setup big(make, big_rows, dim);
    // Interleaved, so that both see the same machine load.
    std::vector<double> small_us, big_us;
    for (int i = 0; i < repeats; ++i) {
      small_us.push_back(small.time_step(i));
      big_us.push_back(big.time_step(i));
    }
    const double anchor = median(small_us);
    const double ours = median(big_us);
    std::printf("%-28s %10.1f %10.1f %7.2f\n", ("sparse_step/" + name).c_str(), ours, anchor,
                ours / anchor);
    std::fflush(stdout);
  }
  return 0;
}
