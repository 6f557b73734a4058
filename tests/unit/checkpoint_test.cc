// Checkpoints: exact resume of tables and optimizer state, checksums, the older optimizer
// format, and a save killed at random moments that always leaves a complete checkpoint.
#include "emb/io/checkpoint.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>

#include "emb/embedding.h"
#include "emb/io/safetensors.h"
#include "emb/optim/adagrad.h"
#include "emb/optim/sgd.h"
#include "emb/optim/sparse_adam.h"
#include "expect_error.h"
#include "io_test_util.h"

namespace emb {
namespace {

using emb::testing::expect_error;
using emb::testing::read_file;
using emb::testing::TempDir;
using emb::testing::write_file;

// One training step of a sparse table on fixed ids.
void train_step(Embedding& m, optim::Optimizer& opt, int k) {
  const Tensor ids = Tensor::from_vector<std::int64_t>({k % 7, (3 * k + 1) % 7, 2}, {3});
  const Tensor grad = Tensor::full({3, 4}, 0.25 * (k + 1), DType::kFloat32);
  m.backward(ids, grad);
  opt.step();
  opt.zero_grad();
}

Embedding make_table(std::uint64_t seed) {
  Generator g(seed);
  return Embedding(EmbeddingOptions(7, 4).sparse(true), g);
}

TEST(Checkpoint, ResumingGivesTheUninterruptedRunBitForBit) {
  TempDir dir;
  const std::string path = dir.file("ck.safetensors");
  Embedding a = make_table(1);
  optim::SparseAdam opt_a({&a.parameter()}, optim::SparseAdamOptions(0.01));
  for (int k = 0; k < 3; ++k) train_step(a, opt_a, k);
  io::save_checkpoint(path, {{"table", a.weight()}, {"extra", Tensor::zeros({2}, DType::kInt64)}},
                      &opt_a, {{"epoch", "3"}});
  // Fresh objects, restored from the file.
  Embedding b = make_table(2);
  optim::SparseAdam opt_b({&b.parameter()}, optim::SparseAdamOptions(0.5));
  const io::Checkpoint ck = io::load_checkpoint(path, &opt_b);
  EXPECT_EQ(ck.metadata, (std::map<std::string, std::string>{{"epoch", "3"}}));
  ASSERT_EQ(ck.tables.size(), 2u);
  b.weight().copy_(ck.tables.at("table"));
  EXPECT_EQ(opt_b.lr(), 0.01);
  EXPECT_EQ(opt_b.state(0).step, 3);
  for (int k = 3; k < 6; ++k) {
    train_step(a, opt_a, k);
    train_step(b, opt_b, k);
  }
  EXPECT_TRUE(a.weight().equal(b.weight()));
  for (const auto& [key, t] : opt_a.state(0).tensors)
    EXPECT_TRUE(t.equal(opt_b.state(0).tensors.at(key))) << key;
  // The file is a plain safetensors file with a checksum for every tensor.
  const io::TensorFile f = io::read_safetensors(path);
  EXPECT_TRUE(f.contains("optim.0.exp_avg"));
  EXPECT_EQ(f.metadata.at("emb.optimizer"), "SparseAdam");
  EXPECT_EQ(f.metadata.count("emb.crc32c.table"), 1u);
  EXPECT_EQ(f.metadata.count("emb.crc32c.optim.0.exp_avg_sq"), 1u);
}

TEST(Checkpoint, ChecksumsAndMismatchesAreFormatErrorsThatChangeNothing) {
  TempDir dir;
  const std::string path = dir.file("ck.safetensors");
  Embedding a = make_table(1);
  optim::Adagrad opt({&a.parameter()}, optim::AdagradOptions(0.1));
  train_step(a, opt, 0);
  io::save_checkpoint(path, {{"table", a.weight()}}, &opt);
  const std::string good = read_file(path);
  // Flip one bit in the last data byte (the tensors lie at the end of the file).
  std::string bad = good;
  bad[bad.size() - 1] = static_cast<char>(bad[bad.size() - 1] ^ 0x01);
  write_file(path, bad);
  Embedding b = make_table(3);
  optim::Adagrad opt_b({&b.parameter()}, optim::AdagradOptions(0.7));
  expect_error<FormatError>([&] { (void)io::load_checkpoint(path, &opt_b); },
                            {"ck.safetensors", "checksum mismatch in tensor"});
  EXPECT_EQ(opt_b.lr(), 0.7);
  EXPECT_EQ(opt_b.state(0).step, 0);
  // Another optimizer's state, or none.
  write_file(path, good);
  optim::SGD sgd({&b.parameter()}, optim::SGDOptions(0.1));
  expect_error<FormatError>([&] { (void)io::load_checkpoint(path, &sgd); },
                            {"state is of a Adagrad optimizer, not SGD"});
  io::save_checkpoint(path, {{"table", a.weight()}});
  expect_error<FormatError>([&] { (void)io::load_checkpoint(path, &opt_b); },
                            "holds no optimizer state");
  // A safetensors file that is not a checkpoint; a tensor without its checksum.
  io::write_safetensors(path, {{"table", a.weight()}});
  expect_error<FormatError>([&] { (void)io::load_checkpoint(path); }, "lacks \"emb.checkpoint\"");
  io::write_safetensors(path, {{"table", a.weight()}}, {{"emb.checkpoint", "1"}});
  expect_error<FormatError>([&] { (void)io::load_checkpoint(path); }, "0 checksums for 1 tensors");
  // Reserved names.
  expect_error<ValueError>(
      [&] {
        io::save_checkpoint(path, {{"optim.x", a.weight()}});
      },
      "reserved prefix");
  expect_error<ValueError>(
      [&] {
        io::save_checkpoint(path, {}, nullptr, {{"emb.x", "1"}});
      },
      "reserved prefix");
}

TEST(Checkpoint, TheOlderOptimizerStateFormatStillLoads) {
  TempDir dir;
  Embedding a = make_table(1);
  optim::Adagrad opt({&a.parameter()}, optim::AdagradOptions(0.1));
  train_step(a, opt, 0);
  opt.save(dir.file("state.bin"));
  Embedding b = make_table(1);
  optim::Adagrad opt_b({&b.parameter()}, optim::AdagradOptions(0.3));
  const io::Checkpoint ck = io::load_checkpoint(dir.file("state.bin"), &opt_b);
  EXPECT_TRUE(ck.tables.empty());
  EXPECT_EQ(opt_b.state(0).step, 1);
  EXPECT_TRUE(opt_b.state(0).tensors.at("sum").equal(opt.state(0).tensors.at("sum")));
  expect_error<ValueError>([&] { (void)io::load_checkpoint(dir.file("state.bin")); },
                           "pass the optimizer");
}

// The child: saves checkpoint versions first, first + 1, ... until it is killed. Version v holds
// a table filled with v, an Adagrad state after a step per version, and "version" = v.
[[noreturn]] void save_forever(const std::string& path, std::int64_t first) {
  ::alarm(20);  // never outlive a parent that died
  Parameter p(Tensor::zeros({64, 16}, DType::kFloat32));
  optim::Adagrad opt({&p}, optim::AdagradOptions(0.1));
  for (std::int64_t v = first;; ++v) {
    p.accumulate_grad(Tensor::full({64, 16}, 1.0, DType::kFloat32));
    opt.step();
    opt.zero_grad();
    p.data().fill_(static_cast<double>(v));
    io::save_checkpoint(path,
                        {{"table", p.data()},
                         {"big", Tensor::full({50000}, static_cast<double>(v), DType::kFloat32)}},
                        &opt,
                        {{"version", std::to_string(v)}, {"steps", std::to_string(v - first + 1)}});
  }
}

TEST(Checkpoint, ASaveKilledAtRandomMomentsLeavesTheOldOrTheNewCheckpoint) {
  TempDir dir;
  const std::string path = dir.file("ck.safetensors");
  // Version 0, timed: the kills land within the first few saves of each child, whatever the
  // speed of the machine (sanitizers, load).
  double save_ms = 0;
  {
    Parameter p(Tensor::zeros({64, 16}, DType::kFloat32));
    optim::Adagrad opt({&p}, optim::AdagradOptions(0.1));
    const auto t0 = std::chrono::steady_clock::now();
    io::save_checkpoint(path,
                        {{"table", p.data()}, {"big", Tensor::zeros({50000}, DType::kFloat32)}},
                        &opt, {{"version", "0"}, {"steps", "0"}});
    save_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  std::mt19937 rng(20261202);
  const int max_delay_us = static_cast<int>(std::max(10000.0, 8000.0 * save_ms));
  std::uniform_int_distribution<int> delay_us(0, max_delay_us);
  const int kTrials = 60;
  std::int64_t last = 0;
  int advanced = 0;
  for (int trial = 0; trial < kTrials; ++trial) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      try {
        save_forever(path, last + 1);
      } catch (...) {
        ::_exit(3);
      }
    }
    ::usleep(static_cast<useconds_t>(delay_us(rng)));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the saving process ended by itself, status " << status;
    // Whatever moment it died at, the checkpoint is complete and verified.
    Parameter q(Tensor::zeros({64, 16}, DType::kFloat32));
    optim::Adagrad opt({&q}, optim::AdagradOptions(0.5));
    const io::Checkpoint ck = io::load_checkpoint(path, &opt);
    const std::int64_t v = std::stoll(ck.metadata.at("version"));
    ASSERT_GE(v, last) << "trial " << trial;
    const Tensor& table = ck.tables.at("table");
    const Tensor& big = ck.tables.at("big");
    for (std::int64_t i = 0; i < table.numel(); ++i)
      ASSERT_EQ(table.get_double(i), static_cast<double>(v));
    for (std::int64_t i = 0; i < big.numel(); ++i)
      ASSERT_EQ(big.get_double(i), static_cast<double>(v));
    ASSERT_EQ(opt.state(0).step, std::stoll(ck.metadata.at("steps")));
    EXPECT_EQ(opt.lr(), 0.1);
    if (v > last) ++advanced;
    last = v;
  }
  // Not vacuous: the savers completed checkpoints between kills, and were killed in the middle
  // of saves (each such kill leaves its temporary file behind).
  int torn = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    torn += e.path().filename().string().rfind(".ck.safetensors.tmp-", 0) == 0;
  }
  EXPECT_GE(advanced, 5);
  EXPECT_GE(torn, 1);
  std::printf(
      "kill test: %d trials (kills 0-%d us after fork, one save %.2f ms), %d found a newer "
      "checkpoint, %d killed mid-save, last version %lld\n",
      kTrials, max_delay_us, save_ms, advanced, torn, static_cast<long long>(last));
}

}  // namespace
}  // namespace emb
