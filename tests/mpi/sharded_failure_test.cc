// A rank that dies mid-training (run_failure_test.cmake drives the two runs):
//   crash DIR    (3 ranks) 2 steps, save (generation 1), 1 more step; then rank 1 is killed
//                (SIGKILL, as by the OOM killer) while ranks 0 and 2 enter the next save. The
//                job must end non-zero, promptly, naming rank 1; generation 1 must stay intact.
//   resume DIR   (2 ranks) load: the tables equal one process after the 2 saved steps, bitwise;
//                2 more steps equal an uninterrupted one-process run of the same 4 batches.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

#include "emb/dist/sharded_embedding_bag_collection.h"
#include "emb/emb.h"
#include "mpi_test_util.h"

namespace emb::dist {
namespace {

using namespace emb::dist::testing;  // NOLINT

Communicator* g_comm = nullptr;
std::string g_mode, g_dir;

const FusedOptimizerOptions kOptimizer = optim::AdagradOptions(0.1).lr_decay(0.01);
constexpr int kCrashRanks = 3;

ShardedEmbeddingBagCollection make_sharded(std::uint64_t seed) {
  return make_trained_sharded(*g_comm, kOptimizer, RowWisePooling::kExact, seed);
}

void train(ShardedEmbeddingBagCollection& c, std::uint64_t seed) {
  train_step(*g_comm, c, seed);
}

TEST(ShardedFailure, CrashOrResume) {
  if (g_mode == "crash") {
    ASSERT_EQ(g_comm->size(), kCrashRanks);
    ShardedEmbeddingBagCollection c = make_sharded(42);
    train(c, 1000);
    train(c, 1001);
    c.save(g_dir);
    train(c, 1002);
    if (g_comm->rank() == 1) std::raise(SIGKILL);
    c.save(g_dir);  // never completes: rank 1 is gone
    ADD_FAILURE() << "the save after the crash returned";
    return;
  }
  ASSERT_EQ(g_mode, "resume");
  Generator gen(42);
  EmbeddingBagCollection one(configs_of(trained_tables()), kOptimizer, gen);
  for (std::uint64_t k = 0; k < 2; ++k) {
    const StepData s = make_step(trained_tables(), kCrashRanks, 1000 + k);
    one.backward_and_step(s.global, s.global_grad);
  }
  ShardedEmbeddingBagCollection c = make_sharded(7);
  c.load(g_dir);
  expect_equal(c, one, "the checkpoint before the crash");
  for (std::uint64_t k = 0; k < 2; ++k) {
    train(c, 3000 + k);
    const StepData s = make_step(trained_tables(), g_comm->size(), 3000 + k);
    one.backward_and_step(s.global, s.global_grad);
  }
  expect_equal(c, one, "two steps after resuming");
}

}  // namespace
}  // namespace emb::dist

int main(int argc, char** argv) {
  emb::dist::Environment mpi(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 3) {
    std::fprintf(stderr, "usage: sharded_failure_test crash|resume DIR\n");
    return 2;
  }
  emb::dist::g_mode = argv[1];
  emb::dist::g_dir = argv[2];
  emb::dist::Communicator comm = emb::dist::Communicator::world();
  emb::dist::g_comm = &comm;
  if (comm.rank() == 0 && emb::dist::g_mode == "crash") {
    std::filesystem::remove_all(emb::dist::g_dir);
  }
  comm.barrier();
  if (comm.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int rc = RUN_ALL_TESTS();
  const bool all = comm.all_ok(rc == 0);
  emb::dist::g_comm = nullptr;
  return all ? 0 : 1;
}
