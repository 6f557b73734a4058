// The sharded collection on N ranks against one process: an EmbeddingBagCollection on the
// same tables, fed the global batch (rank 0's bags, then rank 1's, ...). Run under mpirun with
// 1 to 4 ranks (tests/mpi/CMakeLists.txt).
//
// Bitwise: forward rows of table-wise tables and of row-wise tables pooled exactly (and mode max,
// which always ships rows): the same kernel adds the same rows in the same order. The tables,
// optimizer sums and step counts after K steps, in every plan: each owner receives its rows'
// gradient entries in global input order and applies the one-process arithmetic per row.
// Within a bound: row-wise partial sums (sum, mean), regrouped by rank: |got - want| <=
// (len + P) * eps * sum |w| over the bag's rows (the rounding of a sum of len + P terms in any
// grouping), divided by len for mean.
#include "emb/dist/sharded_embedding_bag_collection.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "emb/dist/mpi_comm.h"
#include "emb/emb.h"
#include "mpi_test_util.h"

namespace emb::dist {
namespace {

using namespace emb::dist::testing;  // NOLINT

Communicator* g_comm = nullptr;

// |got - want| within the bound of a regrouped sum (see the file comment).
void expect_close(const Tensor& got, const Tensor& want, const Tensor& abs_sum,
                  const std::vector<std::int64_t>& lens, EmbeddingBagMode mode, int ranks,
                  const std::string& what) {
  const double eps = got.dtype() == DType::kFloat64 ? std::numeric_limits<double>::epsilon()
                                                    : std::numeric_limits<float>::epsilon();
  const std::int64_t dim = got.size(1);
  for (std::int64_t b = 0; b < got.size(0); ++b) {
    const auto len = lens[static_cast<std::size_t>(b)];
    for (std::int64_t d = 0; d < dim; ++d) {
      double bound = static_cast<double>(len + ranks) * eps * abs_sum.get_double(b * dim + d);
      if (mode == EmbeddingBagMode::kMean && len > 0) bound = bound / static_cast<double>(len) * 2;
      const double diff = std::abs(got.get_double(b * dim + d) - want.get_double(b * dim + d));
      ASSERT_LE(diff, bound) << what << " bag " << b << " element " << d;
    }
  }
}

void run_training(const FusedOptimizerOptions& options, RowWisePooling pooling, int steps) {
  Communicator& comm = *g_comm;
  const int ranks = comm.size();
  const int me = comm.rank();
  const std::vector<TableSpec>& specs = trained_tables();
  Generator g1(42), g2(42);
  ShardedEmbeddingBagCollection sharded(comm, configs_of(specs), plans_of(specs, ranks), options,
                                        pooling, g1);
  EmbeddingBagCollection one(configs_of(specs), options, g2);
  for (int k = 0; k < steps; ++k) {
    const StepData s = make_step(specs, ranks, 1000 + static_cast<std::uint64_t>(k));
    const std::vector<Tensor> got = sharded.forward(s.local[me]);
    const std::vector<Tensor> want_all = one.forward(s.global);
    for (std::size_t t = 0; t < specs.size(); ++t) {
      const Tensor want = rows_of(want_all[t], first_bag_of(s, t, me), got[t].size(0));
      const std::string what = "step " + std::to_string(k) + " table " + std::to_string(t);
      const bool exact = !specs[t].row_wise || pooling == RowWisePooling::kExact;
      if (exact) {
        ASSERT_TRUE(got[t].equal(want)) << what;
      } else {
        // The bound's sum |w|: the same bags pooled (sum) over |table|.
        Tensor abs_table = one.weight(t).clone();
        for (std::int64_t i = 0; i < abs_table.numel(); ++i) {
          abs_table.set_double(i, std::abs(abs_table.get_double(i)));
        }
        EmbeddingBagFuncOptions o;
        o.mode(EmbeddingBagMode::kSum);
        const Tensor abs_sum = embedding_bag(s.local[me].ids[t], abs_table, s.local[me].offsets[t], o);
        std::vector<std::int64_t> lens;
        const Tensor& off = s.local[me].offsets[t];
        for (std::int64_t b = 0; b < off.numel(); ++b) {
          const std::int64_t end = b + 1 < off.numel() ? off.data<std::int64_t>()[b + 1]
                                                       : s.local[me].ids[t].numel();
          lens.push_back(end - off.data<std::int64_t>()[b]);
        }
        expect_close(got[t], want, abs_sum, lens, specs[t].mode, ranks, what);
      }
    }
    sharded.backward_and_step(s.local[me], s.local_grad[me]);
    one.backward_and_step(s.global, s.global_grad);
  }
  for (std::size_t t = 0; t < specs.size(); ++t) {
    EXPECT_TRUE(sharded.gather_table(t).equal(one.weight(t))) << "table " << t;
    for (const auto& [key, value] : one.state(t).tensors) {
      EXPECT_TRUE(sharded.gather_state(t, key).equal(value)) << key << " " << t;
    }
    EXPECT_EQ(sharded.step_count(t), one.state(t).step) << t;
  }
}

TEST(ShardedCollection, SgdEqualsOneProcess) {
  run_training(optim::SGDOptions(0.1), RowWisePooling::kExact, 3);
  run_training(optim::SGDOptions(0.05).maximize(true), RowWisePooling::kPartial, 2);
}

TEST(ShardedCollection, AdagradEqualsOneProcess) {
  run_training(optim::AdagradOptions(0.1).lr_decay(0.01), RowWisePooling::kPartial, 3);
  run_training(optim::AdagradOptions(0.2).initial_accumulator_value(0.1), RowWisePooling::kExact, 2);
}

TEST(ShardedCollection, LazyAdamEqualsOneProcess) {
  run_training(optim::AdamOptions(0.01).amsgrad(true), RowWisePooling::kPartial, 2);
  run_training(optim::AdamWOptions(0.02), RowWisePooling::kExact, 2);
}

TEST(ShardedCollection, RowWiseAdagradEqualsOneProcess) {
  run_training(optim::RowWiseAdagradOptions(0.1).weight_decay(0.01), RowWisePooling::kExact, 3);
  run_training(optim::RowWiseAdagradOptions(0.3).maximize(true), RowWisePooling::kPartial, 2);
}

// Mode max (forward only) always ships rows: bitwise, row-wise and table-wise, every dtype.
TEST(ShardedCollection, MaxAndHalfTablesForwardBitwise) {
  Communicator& comm = *g_comm;
  const int ranks = comm.size();
  const std::vector<TableSpec> specs = {
      {41, 9, EmbeddingBagMode::kMax, DType::kFloat32, true},
      {19, 4, EmbeddingBagMode::kMax, DType::kFloat64, false},
      {33, 17, EmbeddingBagMode::kMean, DType::kFloat16, false},
      {29, 8, EmbeddingBagMode::kMax, DType::kBFloat16, true},
  };
  Generator g1(5), g2(5);
  ShardedEmbeddingBagCollection sharded(comm, configs_of(specs), plans_of(specs, ranks),
                                        optim::SGDOptions(0.1), RowWisePooling::kPartial, g1);
  EmbeddingBagCollection one(configs_of(specs), optim::SGDOptions(0.1), g2);
  const StepData s = make_step(specs, ranks, 77);
  const std::vector<Tensor> got = sharded.forward(s.local[comm.rank()]);
  const std::vector<Tensor> want = one.forward(s.global);
  for (std::size_t t = 0; t < specs.size(); ++t) {
    EXPECT_TRUE(got[t].equal(rows_of(want[t], first_bag_of(s, t, comm.rank()), got[t].size(0))))
        << "table " << t;
  }
}

// Tables drawn shard by shard (no rank holds a whole table): training equals one process
// started from the same (gathered) tables.
TEST(ShardedCollection, PerShardInitTrainsLikeOneProcess) {
  Communicator& comm = *g_comm;
  const int ranks = comm.size();
  const std::vector<TableSpec>& specs = trained_tables();
  Generator gen(11);
  ShardedEmbeddingBagCollection sharded(comm, configs_of(specs), plans_of(specs, ranks),
                                        optim::AdagradOptions(0.1), RowWisePooling::kExact, gen,
                                        ShardInit::kPerShard);
  std::vector<EmbeddingBagConfig> given = configs_of(specs);
  for (std::size_t t = 0; t < specs.size(); ++t) {
    EXPECT_EQ(sharded.shard(t).size(0), sharded.row_end(t) - sharded.row_begin(t));
    given[t].weight(sharded.gather_table(t));
  }
  // Row-wise shards of different ranks are different draws.
  if (ranks > 1) {
    const Tensor whole = sharded.gather_table(1);  // 50 rows, row-wise
    const std::int64_t half = 50 / ranks;
    EXPECT_FALSE(rows_of(whole, 0, 1).equal(rows_of(whole, half, 1)));
  }
  EmbeddingBagCollection one(given, optim::AdagradOptions(0.1));
  for (std::uint64_t k = 0; k < 2; ++k) {
    const StepData s = make_step(specs, ranks, 500 + k);
    const std::vector<Tensor> got = sharded.forward(s.local[comm.rank()]);
    const std::vector<Tensor> want = one.forward(s.global);
    for (std::size_t t = 0; t < specs.size(); ++t) {
      EXPECT_TRUE(got[t].equal(rows_of(want[t], first_bag_of(s, t, comm.rank()), got[t].size(0))));
    }
    sharded.backward_and_step(s.local[comm.rank()], s.local_grad[comm.rank()]);
    one.backward_and_step(s.global, s.global_grad);
  }
  for (std::size_t t = 0; t < specs.size(); ++t) {
    EXPECT_TRUE(sharded.gather_table(t).equal(one.weight(t))) << t;
  }
}

// A caller's own communicator (emb/dist/mpi_comm.h): the world split into even and odd ranks,
// each half its own sharded collection, each equal to one process on its own batches.
TEST(ShardedCollection, OnACallersSplitCommunicator) {
  MPI_Comm half = MPI_COMM_NULL;
  ASSERT_EQ(MPI_Comm_split(native_comm(*g_comm), g_comm->rank() % 2, g_comm->rank(), &half),
            MPI_SUCCESS);
  Communicator sub = from_mpi_comm(half);
  MPI_Comm_free(&half);  // emb keeps its own duplicate
  EXPECT_EQ(sub.size(), (g_comm->size() + (g_comm->rank() % 2 == 0 ? 1 : 0)) / 2);
  Communicator* world = g_comm;
  g_comm = &sub;
  run_training(optim::RowWiseAdagradOptions(0.1), RowWisePooling::kPartial, 2);
  g_comm = world;
}

// A bad batch on the last rank: refused on every rank, nothing sent or written anywhere.
TEST(ShardedCollection, BadBatchOnOneRankIsRefusedEverywhere) {
  Communicator& comm = *g_comm;
  const int ranks = comm.size();
  const int me = comm.rank();
  const std::vector<TableSpec>& specs = trained_tables();
  Generator g1(8);
  ShardedEmbeddingBagCollection sharded(comm, configs_of(specs), plans_of(specs, ranks),
                                        optim::AdagradOptions(0.1), RowWisePooling::kPartial, g1);
  std::vector<Tensor> before;
  for (std::size_t t = 0; t < specs.size(); ++t) before.push_back(sharded.gather_table(t));
  StepData s = make_step(specs, ranks, 9);
  KeyedJaggedBatch mine = s.local[me];
  if (me == ranks - 1) {
    mine.ids[2] = Tensor::from_vector<std::int64_t>({0, 23}, {2});  // row 23 of 23
    mine.offsets[2] = Tensor::from_vector<std::int64_t>({0}, {1});
  }
  for (int call = 0; call < 2; ++call) {
    try {
      if (call == 0) {
        sharded.forward(mine);
      } else {
        sharded.backward_and_step(mine, s.local_grad[me]);
      }
      ADD_FAILURE() << "call " << call << " did not throw";
    } catch (const IndexError& e) {
      EXPECT_EQ(me, ranks - 1);
      EXPECT_NE(std::string(e.what()).find("table \"t2\""), std::string::npos) << e.what();
    } catch (const DistError& e) {
      EXPECT_NE(me, ranks - 1);
      EXPECT_NE(std::string(e.what()).find("rank " + std::to_string(ranks - 1)),
                std::string::npos)
          << e.what();
    }
  }
  for (std::size_t t = 0; t < specs.size(); ++t) {
    EXPECT_TRUE(sharded.gather_table(t).equal(before[t])) << t;
    EXPECT_EQ(sharded.step_count(t), 0);
  }
}

}  // namespace
}  // namespace emb::dist

int main(int argc, char** argv) {
  emb::dist::Environment mpi(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  emb::dist::Communicator comm = emb::dist::Communicator::world();
  emb::dist::g_comm = &comm;
  // Only rank 0 prints the results; every rank's failures still fail its exit code.
  if (comm.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int rc = RUN_ALL_TESTS();
  // The job fails when any rank failed.
  const bool all = comm.all_ok(rc == 0);
  emb::dist::g_comm = nullptr;
  return all ? 0 : 1;
}
