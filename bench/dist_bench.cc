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
#include "collection_tables.h"
#include "emb/dist/mpi_comm.h"
#include "emb/dist/sharded_embedding_bag_collection.h"
#include "emb/emb.h"

namespace {

using emb::bench::kTables;

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
  const std::vector<emb::EmbeddingBagConfig> configs = emb::bench::table_configs();
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
  const std::vector<emb::Tensor> grads = emb::bench::make_grads();
  for (const Case& c : cases) {
    std::vector<emb::dist::ShardingPlan> plans;
    for (int t = 0; t < kTables; ++t) {
      plans.push_back(c.row_wise ? emb::dist::ShardingPlan::row_wise()
                                 : emb::dist::ShardingPlan::table_wise(t % p));
    }
    emb::Generator gen(1);
    emb::dist::ShardedEmbeddingBagCollection ebc(
        comm, configs, plans, emb::optim::RowWiseAdagradOptions(0.1), c.pooling, gen);
    std::int64_t fwd = 0, bwd = 0;
    std::vector<double> times;
    for (int s = 0; s < steps; ++s) {
      std::mt19937_64 rng(static_cast<std::uint64_t>(s) * 1000 +
                          static_cast<std::uint64_t>(comm.rank()));
      const emb::KeyedJaggedBatch batch = emb::bench::make_batch(rng);
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
