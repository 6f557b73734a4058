// Sparse optimizer steps cost what the batch touched, not the table: one step on 1,000 rows of a
// 10,000,000-row table against the same step on a 10,000-row table (the anchor).
//
//   sparse_step_bench [big_rows=10000000] [dim=64] [repeats=200] [--out DIR]
//                     [--fused-only] [--fused-ids N=1000000] [--fused-reps R=5]
//                     [--fused-table-mib M=1024]
//
// Prints (and writes to DIR/sparse_step.tsv) `case emb_ns anchor anchor_ns speedup`: median
// nanoseconds of one step() on the big table (emb_ns) and on the small table (anchor
// `small_table`), steps on the two interleaved; speedup = anchor_ns / emb_ns, 1 when a step costs
// what the batch touched and nothing more. Before timing, each case checks that a step moved
// exactly the gradient's rows.
//
// With libtorch (built when CMake finds Torch), the fused training step too:
// `fused_rowwise_adagrad_d<D>_t<T>`, emb's EmbeddingBag::fused_backward_step with RowWiseAdagrad
// against libtorch's sparse bag backward (at::_embedding_bag_backward, sparse) followed by
// torch::optim::Adagrad's step, on the same bags of 20 uniform random ids over a cold float32
// table of M MiB (each side its own), D = 64 and 128, 1 and 2 threads (emb::set_num_threads and
// at::set_num_threads alike); ns per id, median of R interleaved repetitions, the forward left
// out of both. Before timing, emb's fused step is checked bit for bit against its backward +
// step on a small table.
#include <algorithm>
#include <cstring>
#include <tuple>
#include <utility>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_report.h"
#include "emb/emb.h"
#include "emb/optim.h"

#ifdef EMB_BENCH_TORCH
#include <torch/torch.h>
#endif

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

#ifdef EMB_BENCH_TORCH
struct FusedConfig {
  std::int64_t ids = 1000000;
  int reps = 5;
  std::int64_t table_mib = 1024;
};

constexpr std::int64_t kBag = 20;

// n uniform ids over rows, in bags of kBag: ids [n], offsets [n / kBag].
std::pair<emb::Tensor, emb::Tensor> bags_of(std::int64_t n, std::int64_t rows, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> row(0, rows - 1);
  std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
  for (auto& id : ids) id = row(rng);
  std::vector<std::int64_t> offsets(static_cast<std::size_t>(n / kBag));
  for (std::size_t b = 0; b < offsets.size(); ++b) offsets[b] = static_cast<std::int64_t>(b) * kBag;
  return {emb::Tensor::from_vector<std::int64_t>(ids, {n}),
          emb::Tensor::from_vector<std::int64_t>(offsets, {n / kBag})};
}

emb::Tensor normal_floats(const emb::Shape& shape, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  emb::Tensor t = emb::Tensor::empty(shape, emb::DType::kFloat32);
  float* p = t.data<float>();
  for (std::int64_t k = 0; k < t.numel(); ++k) p[k] = normal(rng);
  return t;
}

torch::Tensor as_torch(const emb::Tensor& t) {
  std::vector<std::int64_t> shape(t.shape().begin(), t.shape().end());
  const auto dtype = t.dtype() == emb::DType::kInt64 ? torch::kInt64 : torch::kFloat32;
  return torch::from_blob(t.raw_data(), shape, dtype).clone();
}

// emb's fused step equals its backward + step, bit for bit (a small table, before any timing).
void check_fused(std::int64_t dim) {
  const std::int64_t rows = 5000;
  const emb::Tensor w = normal_floats({rows, dim}, 7);
  auto opts = emb::EmbeddingBagOptions(rows, dim).mode(emb::EmbeddingBagMode::kSum).sparse(true);
  emb::EmbeddingBag fused(emb::EmbeddingBagOptions(opts)._weight(w.clone()));
  emb::EmbeddingBag unfused(emb::EmbeddingBagOptions(opts)._weight(w.clone()));
  emb::optim::RowWiseAdagrad opt_f({&fused.parameter()}, emb::optim::RowWiseAdagradOptions(0.1));
  emb::optim::RowWiseAdagrad opt_u({&unfused.parameter()}, emb::optim::RowWiseAdagradOptions(0.1));
  const auto [ids, offsets] = bags_of(20000, rows, 8);
  const emb::Tensor grad = normal_floats({offsets.numel(), dim}, 9);
  fused.fused_backward_step(ids, offsets, grad, opt_f);
  unfused.backward(ids, offsets, grad);
  opt_u.step();
  const emb::Tensor& a = fused.weight();
  const emb::Tensor& b = unfused.weight();
  if (std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) != 0) {
    std::fprintf(stderr, "fused step differs from backward + step (dim %lld)\n",
                 static_cast<long long>(dim));
    std::exit(1);
  }
}

void fused_cases(emb::bench::Report& report, const FusedConfig& cfg) {
  constexpr int kBatches = 3;  // distinct batches, cycled
  for (std::int64_t dim : {64, 128}) {
    check_fused(dim);
    const std::int64_t rows = cfg.table_mib * (std::int64_t{1} << 20) / (dim * 4);
    const std::int64_t n = cfg.ids / kBag * kBag;
    // Tables written in full before timing (no first-touch page faults in the loop).
    emb::EmbeddingBag bag(emb::EmbeddingBagOptions(rows, dim)
                              .mode(emb::EmbeddingBagMode::kSum)
                              .sparse(true)
                              ._weight(emb::Tensor::full({rows, dim}, 0.01, emb::DType::kFloat32)));
    emb::optim::RowWiseAdagrad opt({&bag.parameter()}, emb::optim::RowWiseAdagradOptions(0.1));
    torch::Tensor t_weight = torch::full({rows, dim}, 0.01f).set_requires_grad(true);
    torch::optim::Adagrad t_opt({t_weight}, torch::optim::AdagradOptions(0.1));
    struct Batch {
      emb::Tensor ids, offsets, grad;
      torch::Tensor t_ids, t_offsets, t_grad, offset2bag, bag_size, max_indices;
    };
    std::vector<Batch> batches;
    for (int k = 0; k < kBatches; ++k) {
      Batch b;
      std::tie(b.ids, b.offsets) = bags_of(n, rows, 100 + static_cast<std::uint64_t>(k));
      b.grad = normal_floats({b.offsets.numel(), dim}, 200 + static_cast<std::uint64_t>(k));
      b.t_ids = as_torch(b.ids);
      b.t_offsets = as_torch(b.offsets);
      b.t_grad = as_torch(b.grad);
      // The forward's auxiliaries, outside the timing (emb's fused step needs none).
      const auto fwd = at::_embedding_bag(t_weight.detach(), b.t_ids, b.t_offsets, false, 0, true);
      b.offset2bag = std::get<1>(fwd);
      b.bag_size = std::get<2>(fwd);
      b.max_indices = std::get<3>(fwd);
      batches.push_back(std::move(b));
    }
    auto emb_step = [&](const Batch& b) { bag.fused_backward_step(b.ids, b.offsets, b.grad, opt); };
    auto torch_step = [&](const Batch& b) {
      t_weight.mutable_grad() = at::_embedding_bag_backward(
          b.t_grad, b.t_ids, b.t_offsets, b.offset2bag, b.bag_size, b.max_indices, rows, false, 0,
          true, {}, -1);
      t_opt.step();
    };
    for (int threads : {1, 2}) {
      emb::set_num_threads(threads);
      at::set_num_threads(threads);
      emb_step(batches[0]);  // warm: code, thread pools
      torch_step(batches[0]);
      t_weight.mutable_grad().reset();
      std::vector<double> e, a;
      for (int r = 0; r < cfg.reps; ++r) {
        const Batch& b = batches[static_cast<std::size_t>(r % kBatches)];
        e.push_back(emb::bench::time_ns([&] { emb_step(b); }) / static_cast<double>(n));
        a.push_back(emb::bench::time_ns([&] { torch_step(b); }) / static_cast<double>(n));
        t_weight.mutable_grad().reset();
      }
      report.add("fused_rowwise_adagrad_d" + std::to_string(dim) + "_t" + std::to_string(threads),
                 e, "libtorch", a);
    }
  }
}
#endif

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args;
  std::string out_dir = "build/bench";
  bool fused_only = false;
#ifdef EMB_BENCH_TORCH
  FusedConfig fused;
#endif
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--out" && i + 1 < argc) {
      out_dir = argv[++i];
    } else if (a == "--fused-only") {
      fused_only = true;
#ifdef EMB_BENCH_TORCH
    } else if (a == "--fused-ids" && i + 1 < argc) {
      fused.ids = std::atoll(argv[++i]);
    } else if (a == "--fused-reps" && i + 1 < argc) {
      fused.reps = std::atoi(argv[++i]);
    } else if (a == "--fused-table-mib" && i + 1 < argc) {
      fused.table_mib = std::atoll(argv[++i]);
#endif
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
    if (fused_only) break;
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
#ifdef EMB_BENCH_TORCH
  std::printf(
      "# fused step: EmbeddingBag::fused_backward_step + RowWiseAdagrad vs libtorch sparse bag "
      "backward + torch::optim::Adagrad, %lld ids in bags of %lld, %lld MiB float32 tables, "
      "median of %d interleaved repetitions, ns per id\n",
      static_cast<long long>(fused.ids), static_cast<long long>(kBag),
      static_cast<long long>(fused.table_mib), fused.reps);
  fused_cases(report, fused);
#else
  if (fused_only) std::fprintf(stderr, "built without libtorch: no fused-step anchor\n");
#endif
  return 0;
}
