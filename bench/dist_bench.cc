// The sharded collection on the ranks it is started on (mpirun -np N dist_bench): 8 tables of
// 100,000 x 64 float32, every rank a batch of 256 bags of 20 ids per table, RowWiseAdagrad.
// For each plan, the bytes each rank hands to MPI for other ranks per training batch (forward +
// backward_and_step), split by phase, and the median time of a step.
//
//   mpirun -np N dist_bench [steps=10] [--out DIR]
//
// Prints (rank 0; and DIR/dist_np<N>.tsv):
//   plan ranks fwd_bytes bwd_bytes total_bytes step_ns
// bytes: per rank and batch, averaged over ranks and steps (exact counts of the payload: ids,
// bag lengths, pooled rows, gradients, the all-to-all counts and the 4-byte agreement).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "bench_report.h"
#include "emb/dist/mpi_comm.h"
#include "emb/dist/sharded_embedding_bag_collection.h"
#include "emb/emb.h"

namespace {

constexpr int kTables = 8;
constexpr std::int64_t kRows = 100000;
constexpr std::int64_t kDim = 64;
constexpr std::int64_t kBags = 256;
constexpr std::int64_t kBagLen = 20;

emb::KeyedJaggedBatch make_batch(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> row(0, kRows - 1);
  emb::KeyedJaggedBatch b;
  for (int t = 0; t < kTables; ++t) {
    std::vector<std::int64_t> ids(kBags * kBagLen);
    for (auto& id : ids) id = row(rng);
    std::vector<std::int64_t> offsets(kBags);
    for (std::int64_t k = 0; k < kBags; ++k) offsets[static_cast<std::size_t>(k)] = k * kBagLen;
    b.add("t" + std::to_string(t), emb::Tensor::from_vector<std::int64_t>(ids, {kBags * kBagLen}),
          emb::Tensor::from_vector<std::int64_t>(offsets, {kBags}));
  }
  return b;
}

std::int64_t sum_over_ranks(const emb::dist::Communicator& comm, std::int64_t v) {
  std::int64_t out = 0;
  MPI_Allreduce(&v, &out, 1, MPI_INT64_T, MPI_SUM, emb::dist::native_comm(comm));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  emb::dist::Environment mpi(argc, argv);
  int steps = 10;
  std::string out_dir = ".";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--out" && i + 1 < argc) {
      out_dir = argv[++i];
    } else {
      steps = std::atoi(argv[i]);
    }
  }
  emb::dist::Communicator comm = emb::dist::Communicator::world();
  const int p = comm.size();
  std::vector<emb::EmbeddingBagConfig> configs;
  for (int t = 0; t < kTables; ++t) configs.emplace_back("t" + std::to_string(t), kRows, kDim);
  struct Case {
    const char* name;
    bool row_wise;
    emb::dist::RowWisePooling pooling;
  };
  const Case cases[] = {{"table_wise", false, emb::dist::RowWisePooling::kPartial},
                        {"row_wise_partial", true, emb::dist::RowWisePooling::kPartial},
                        {"row_wise_exact", true, emb::dist::RowWisePooling::kExact}};
  std::FILE* tsv = nullptr;
  if (comm.rank() == 0) {
    tsv = std::fopen((out_dir + "/dist_np" + std::to_string(p) + ".tsv").c_str(), "w");
    std::printf("plan\tranks\tfwd_bytes\tbwd_bytes\ttotal_bytes\tstep_ns\n");
    if (tsv) std::fprintf(tsv, "plan\tranks\tfwd_bytes\tbwd_bytes\ttotal_bytes\tstep_ns\n");
  }
  emb::Generator grad_gen(3);
  std::vector<emb::Tensor> grads;
  for (int t = 0; t < kTables; ++t) {
    grads.push_back(emb::Tensor::empty({kBags, kDim}, emb::DType::kFloat32));
    grad_gen.normal_(grads.back());
  }
  for (const Case& c : cases) {
    std::vector<emb::dist::ShardingPlan> plans;
    for (int t = 0; t < kTables; ++t) {
      plans.push_back(c.row_wise ? emb::dist::ShardingPlan::row_wise()
                                 : emb::dist::ShardingPlan::table_wise(t % p));
    }
    emb::Generator gen(1);
    emb::dist::ShardedEmbeddingBagCollection ebc(comm, configs, plans,
                                                 emb::optim::RowWiseAdagradOptions(0.1), c.pooling,
                                                 gen);
    std::int64_t fwd = 0, bwd = 0;
    std::vector<double> times;
    for (int s = 0; s < steps; ++s) {
      const emb::KeyedJaggedBatch batch =
          make_batch(static_cast<std::uint64_t>(s) * 1000 + static_cast<std::uint64_t>(comm.rank()));
      comm.barrier();
      comm.reset_stats();
      double ns = emb::bench::time_ns([&] { ebc.forward(batch); });
      fwd += comm.stats().bytes_sent;
      comm.reset_stats();
      ns += emb::bench::time_ns([&] { ebc.backward_and_step(batch, grads); });
      bwd += comm.stats().bytes_sent;
      times.push_back(ns);
    }
    const double per = static_cast<double>(p) * steps;
    const double f = static_cast<double>(sum_over_ranks(comm, fwd)) / per;
    const double b = static_cast<double>(sum_over_ranks(comm, bwd)) / per;
    const double med = emb::bench::median(times);
    if (comm.rank() == 0) {
      std::printf("%s\t%d\t%.0f\t%.0f\t%.0f\t%.0f\n", c.name, p, f, b, f + b, med);
      if (tsv) std::fprintf(tsv, "%s\t%d\t%.0f\t%.0f\t%.0f\t%.0f\n", c.name, p, f, b, f + b, med);
    }
  }
  if (tsv) std::fclose(tsv);
  return 0;
}
