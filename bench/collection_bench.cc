// EmbeddingBagCollection against one call per table (the anchor `per_table`: an EmbeddingBag
// module and an emb optimizer per table, called one after the other): 8 tables of
// 100,000 x 64 float32, 256 bags of 20 ids per table per batch.
//
//   collection_bench [repeats=30] [--out DIR]
//
// Cases (median ns per batch, the two sides interleaved repetition by repetition):
//   ebc_forward              forward of all tables
//   ebc_step_<optimizer>     forward + backward + optimizer step of all tables
// Before timing, each case checks that both sides give bitwise the same outputs and tables.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_report.h"
#include "collection_tables.h"
#include "emb/emb.h"

namespace {

using emb::bench::kBags;
using emb::bench::kDim;
using emb::bench::kRows;
using emb::bench::kTables;

constexpr int kBatches = 8;  // distinct batches, cycled

std::vector<emb::KeyedJaggedBatch> make_batches() {
  std::mt19937_64 rng(7);
  std::vector<emb::KeyedJaggedBatch> out;
  for (int b = 0; b < kBatches; ++b) out.push_back(emb::bench::make_batch(rng));
  return out;
}

// The collection and its per-table twin, on the same initial tables.
struct Sides {
  std::unique_ptr<emb::EmbeddingBagCollection> ebc;
  std::vector<emb::EmbeddingBag> modules;
  std::vector<std::unique_ptr<emb::optim::Optimizer>> opts;

  explicit Sides(const emb::FusedOptimizerOptions& options) {
    emb::Generator gen(1);
    ebc = std::make_unique<emb::EmbeddingBagCollection>(emb::bench::table_configs(), options, gen);
    for (int t = 0; t < kTables; ++t) {
      modules.emplace_back(emb::EmbeddingBagOptions(kRows, kDim)
                               .mode(emb::EmbeddingBagMode::kSum)
                               .sparse(true)
                               ._weight(ebc->weight(static_cast<std::size_t>(t)).clone()));
    }
    for (auto& m : modules) {
      std::vector<emb::Parameter*> p{&m.parameter()};
      std::visit(
          [&](const auto& o) {
            using O = std::decay_t<decltype(o)>;
            if constexpr (std::is_same_v<O, emb::optim::SGDOptions>) {
              opts.push_back(std::make_unique<emb::optim::SGD>(p, o));
            } else if constexpr (std::is_same_v<O, emb::optim::AdagradOptions>) {
              opts.push_back(std::make_unique<emb::optim::Adagrad>(p, o));
            } else if constexpr (std::is_same_v<O, emb::optim::RowWiseAdagradOptions>) {
              opts.push_back(std::make_unique<emb::optim::RowWiseAdagrad>(p, o));
            } else if constexpr (std::is_same_v<O, emb::optim::AdamOptions>) {
              opts.push_back(std::make_unique<emb::optim::LazyAdam>(p, o));
            } else {
              opts.push_back(std::make_unique<emb::optim::LazyAdamW>(p, o));
            }
          },
          options);
    }
  }

  std::vector<emb::Tensor> per_table_forward(const emb::KeyedJaggedBatch& b) {
    std::vector<emb::Tensor> out;
    for (int t = 0; t < kTables; ++t) out.push_back(modules[t](b.ids[t], b.offsets[t]));
    return out;
  }
  void per_table_step(const emb::KeyedJaggedBatch& b, const std::vector<emb::Tensor>& g) {
    for (int t = 0; t < kTables; ++t) {
      modules[t](b.ids[t], b.offsets[t]);
      modules[t].backward(b.ids[t], b.offsets[t], g[static_cast<std::size_t>(t)]);
      opts[static_cast<std::size_t>(t)]->step();
      opts[static_cast<std::size_t>(t)]->zero_grad();
    }
  }
  void ebc_step(const emb::KeyedJaggedBatch& b, const std::vector<emb::Tensor>& g) {
    ebc->forward(b);
    ebc->backward_and_step(b, g);
  }
  bool same_tables() const {
    for (int t = 0; t < kTables; ++t) {
      if (!ebc->weight(static_cast<std::size_t>(t)).equal(modules[t].weight())) return false;
    }
    return true;
  }
};

}  // namespace

int main(int argc, char** argv) {
  int repeats = 30;
  std::string out_dir = ".";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--out" && i + 1 < argc) {
      out_dir = argv[++i];
    } else {
      repeats = std::atoi(argv[i]);
    }
  }
  emb::bench::Report report(out_dir + "/collection.tsv", out_dir + "/collection_spread.tsv");
  const std::vector<emb::KeyedJaggedBatch> batches = make_batches();
  const std::vector<emb::Tensor> grads = emb::bench::make_grads();

  {  // forward
    Sides s(emb::optim::SGDOptions(0.1));
    const std::vector<emb::Tensor> a = s.ebc->forward(batches[0]);
    const std::vector<emb::Tensor> b = s.per_table_forward(batches[0]);
    for (int t = 0; t < kTables; ++t) {
      if (!a[static_cast<std::size_t>(t)].equal(b[static_cast<std::size_t>(t)])) {
        std::fprintf(stderr, "forward: table %d differs\n", t);
        return 1;
      }
    }
    std::vector<double> e, p;
    for (int r = 0; r < repeats; ++r) {
      const auto& batch = batches[static_cast<std::size_t>(r % kBatches)];
      e.push_back(emb::bench::time_ns([&] { s.ebc->forward(batch); }));
      p.push_back(emb::bench::time_ns([&] { s.per_table_forward(batch); }));
    }
    report.add("ebc_forward", e, "per_table", p);
  }
  const std::vector<std::pair<std::string, emb::FusedOptimizerOptions>> cases = {
      {"sgd", emb::optim::SGDOptions(0.1)},
      {"adagrad", emb::optim::AdagradOptions(0.1)},
      {"rowwise_adagrad", emb::optim::RowWiseAdagradOptions(0.1)},
      {"lazy_adam", emb::optim::AdamOptions(0.01)}};
  for (const auto& [name, options] : cases) {
    Sides s(options);
    s.ebc_step(batches[0], grads);
    s.per_table_step(batches[0], grads);
    if (!s.same_tables()) {
      std::fprintf(stderr, "%s: tables differ after one step\n", name.c_str());
      return 1;
    }
    std::vector<double> e, p;
    for (int r = 0; r < repeats; ++r) {
      const auto& batch = batches[static_cast<std::size_t>(r % kBatches)];
      e.push_back(emb::bench::time_ns([&] { s.ebc_step(batch, grads); }));
      p.push_back(emb::bench::time_ns([&] { s.per_table_step(batch, grads); }));
    }
    report.add("ebc_step_" + name, e, "per_table", p);
  }
  return 0;
}
