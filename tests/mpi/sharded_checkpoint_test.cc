// Sharded checkpoints written on N ranks and loaded on M (run by CTest as two mpirun calls, a
// fixture: `save DIR` on N ranks, then `load DIR N` on M ranks).
//   save: 2 steps, save, 1 more step, save again (the first generation's files are removed).
//   load: the tables, optimizer sums and step counts equal one process after the same 3 steps,
//         bitwise; one more step on M ranks equals one process's next step; a checkpoint with
//         one flipped byte is refused on every rank and changes nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "emb/dist/sharded_embedding_bag_collection.h"
#include "emb/emb.h"
#include "mpi_test_util.h"

namespace emb::dist {
namespace {

using namespace emb::dist::testing;  // NOLINT
namespace fs = std::filesystem;

Communicator* g_comm = nullptr;
std::string g_mode, g_dir;
int g_saved_ranks = 0;

const FusedOptimizerOptions kOptimizer = optim::RowWiseAdagradOptions(0.1).weight_decay(0.01);
constexpr int kSavedSteps = 3;

ShardedEmbeddingBagCollection make_sharded(std::uint64_t seed) {
  return make_trained_sharded(*g_comm, kOptimizer, RowWisePooling::kPartial, seed);
}

void train(ShardedEmbeddingBagCollection& c, std::uint64_t seed) {
  train_step(*g_comm, c, seed);
}

TEST(ShardedCheckpoint, SaveOrLoad) {
  if (g_mode == "save") {
    if (g_comm->rank() == 0) fs::remove_all(g_dir);  // a fresh directory: generations 1 and 2
    g_comm->barrier();
    ShardedEmbeddingBagCollection c = make_sharded(42);
    for (int k = 0; k < 2; ++k) train(c, 1000 + static_cast<std::uint64_t>(k));
    c.save(g_dir);
    train(c, 1002);
    c.save(g_dir);
    if (g_comm->rank() == 0) {  // only the second generation's files remain
      int files = 0;
      for (const auto& e : fs::directory_iterator(g_dir)) {
        const std::string n = e.path().filename().string();
        if (n.rfind("shard-", 0) == 0) {
          ++files;
          EXPECT_EQ(n.rfind("shard-g2-", 0), 0u) << n;
        }
      }
      EXPECT_EQ(files, g_comm->size());
    }
    return;
  }
  ASSERT_EQ(g_mode, "load");
  // One process, the same 3 steps (the batches of the saving run's rank count).
  Generator gen(42);
  EmbeddingBagCollection one(configs_of(trained_tables()), kOptimizer, gen);
  for (int k = 0; k < kSavedSteps; ++k) {
    const StepData s = make_step(trained_tables(), g_saved_ranks, 1000 + static_cast<std::uint64_t>(k));
    one.backward_and_step(s.global, s.global_grad);
  }
  ShardedEmbeddingBagCollection c = make_sharded(7);  // other initial tables, replaced by load
  c.load(g_dir);
  expect_equal(c, one, "after load");

  // A corrupted copy: refused everywhere, nothing changes.
  const std::string bad = g_dir + "-corrupt";
  if (g_comm->rank() == 0) {
    fs::remove_all(bad);
    fs::copy(g_dir, bad);
    for (const auto& e : fs::directory_iterator(bad)) {
      if (e.path().filename().string().rfind("shard-", 0) != 0) continue;
      std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(-1, std::ios::end);
      char ch = 0;
      f.get(ch);
      f.seekp(-1, std::ios::end);
      f.put(static_cast<char>(ch ^ 0x5a));
      break;  // one file
    }
  }
  g_comm->barrier();
  EXPECT_THROW(c.load(bad), Error);
  expect_equal(c, one, "after a refused load");

  // Training goes on from the checkpoint on this rank count as one process would.
  const StepData s = make_step(trained_tables(), g_comm->size(), 2000);
  c.forward(s.local[g_comm->rank()]);
  c.backward_and_step(s.local[g_comm->rank()], s.local_grad[g_comm->rank()]);
  one.backward_and_step(s.global, s.global_grad);
  expect_equal(c, one, "one step after load");
}

}  // namespace
}  // namespace emb::dist

int main(int argc, char** argv) {
  emb::dist::Environment mpi(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 3) {
    std::fprintf(stderr, "usage: sharded_checkpoint_test save DIR | load DIR SAVED_RANKS\n");
    return 2;
  }
  emb::dist::g_mode = argv[1];
  emb::dist::g_dir = argv[2];
  if (argc > 3) emb::dist::g_saved_ranks = std::atoi(argv[3]);
  emb::dist::Communicator comm = emb::dist::Communicator::world();
  emb::dist::g_comm = &comm;
  if (comm.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int rc = RUN_ALL_TESTS();
  const bool all = comm.all_ok(rc == 0);
  emb::dist::g_comm = nullptr;
  return all ? 0 : 1;
}
