// Sparse optimizer steps cost what the batch touched, not the table: one step on 1,000 rows of a
// 10,000,000-row table against the same step on a 10,000-row table (the anchor).
//
//   sparse_step_bench [big_rows=10000000] [dim=64] [repeats=200] [--out DIR]
//
// Prints (and writes to DIR/sparse_step.tsv) `case emb_ns anchor anchor_ns speedup`: median
// nanoseconds of one step() on the big table (emb_ns) and on the small table (anchor
// `small_table`), steps on the two interleaved; speedup = anchor_ns / emb_ns, 1 when a step costs
// what the batch touched and nothing more. Before timing, each case checks that a step moved
// exactly the gradient's rows.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_report.h"
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

  // Nanoseconds of one step() on batch i.
  double time_step(int i) {
    opt->zero_grad();
    table->accumulate_grad(batches[static_cast<std::size_t>(i % kGradients)]);
    const auto t0 = std::chrono::steady_clock::now();
    opt->step();
    const auto t1 = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::nano>(t1 - t0).count();
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args;
  std::string out_dir = "build/bench";
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--out" && i + 1 < argc) {
      out_dir = argv[++i];
    } else {
      args.emplace_back(argv[i]);
    }
  }
  const std::int64_t big_rows = args.size() > 0 ? std::atoll(args[0].c_str()) : 10000000;
  const std::int64_t dim = args.size() > 1 ? std::atoll(args[1].c_str()) : 64;
  const int repeats = args.size() > 2 ? std::atoi(args[2].c_str()) : 200;
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
      "# sparse step, %lld rows of dim %lld, float32: %lld-row table (emb) vs %lld-row "
      "table (anchor small_table), median of %d interleaved steps, ns per step\n",
      static_cast<long long>(kBatchRows), static_cast<long long>(dim),
      static_cast<long long>(big_rows), static_cast<long long>(kSmallRows), repeats);
  emb::bench::Report report(out_dir + "/sparse_step.tsv", out_dir + "/sparse_step_spread.tsv");
  for (const auto& [name, make] : cases) {
    Setup small(make, kSmallRows, dim);
    Setup big(make, big_rows, dim);
    // Interleaved, so that both see the same machine load.
    std::vector<double> small_ns, big_ns;
    for (int i = 0; i < repeats; ++i) {
      small_ns.push_back(small.time_step(i));
      big_ns.push_back(big.time_step(i));
    }
    report.add("sparse_step_" + name, big_ns, "small_table", small_ns);
  }
  return 0;
}
