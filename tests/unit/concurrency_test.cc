// What emb promises to threads (docs/ROBUSTNESS.md): calls that only read a table may run
// concurrently; calls that write it (a max_norm renorm, a backward into the same parameter, an
// optimizer step) need the caller's synchronisation. Run with the library's own threading off
// (EMB_NUM_THREADS=1) and built with -fsanitize=thread by the tsan preset, where a data race
// fails the test; in the other builds it checks the results.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "emb/emb.h"

namespace {

using namespace emb;

constexpr int kThreads = 4;
constexpr int kIterations = 60;

// Runs body(thread_index) on kThreads threads at once.
void run_threads(const std::function<void(int)>& body) {
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(body, t);
  for (std::thread& th : threads) th.join();
}

// Batch i: 12 ids spread over the table, the same for a given i on every call.
Tensor batch_ids(int i, std::int64_t rows) {
  std::vector<std::int64_t> v;
  for (std::int64_t k = 0; k < 12; ++k) v.push_back((i * 7 + k * 13) % rows);
  return Tensor::from_vector<std::int64_t>(v, {12});
}

TEST(Concurrency, ReadOnlyForwardsOnOneModule) {
  Generator gen(3);
  Embedding table(EmbeddingOptions(64, 16).padding_idx(0), gen);
  EmbeddingBag sum(EmbeddingBagOptions(64, 16).mode(EmbeddingBagMode::kSum), gen);
  EmbeddingBag mean(EmbeddingBagOptions(64, 16).mode(EmbeddingBagMode::kMean), gen);
  EmbeddingBag max(EmbeddingBagOptions(64, 16).mode(EmbeddingBagMode::kMax), gen);
  const Tensor offsets = Tensor::from_vector<std::int64_t>({0, 3, 3, 8}, {4});
  std::vector<std::vector<Tensor>> expected(kIterations);
  for (int i = 0; i < kIterations; ++i) {
    const Tensor ids = batch_ids(i, 64);
    expected[i] = {table(ids), sum(ids, offsets), mean(ids, offsets), max(ids, offsets),
                   embedding_bag_forward(ids, max.weight(), offsets,
                                         EmbeddingBagFuncOptions().mode(EmbeddingBagMode::kMax))
                       .max_indices};
  }
  const Tensor weight_before = table.weight().clone();
  std::vector<int> mismatches(kThreads, 0);
  run_threads([&](int t) {
    for (int k = 0; k < kIterations; ++k) {
      const int i = (k + t * 11) % kIterations;
      const Tensor ids = batch_ids(i, 64);
      const std::vector<Tensor> got = {
          table(ids), sum(ids, offsets), mean(ids, offsets), max(ids, offsets),
          embedding_bag_forward(ids, max.weight(), offsets,
                                EmbeddingBagFuncOptions().mode(EmbeddingBagMode::kMax))
              .max_indices};
      for (std::size_t j = 0; j < got.size(); ++j) {
        if (!got[j].equal(expected[i][j])) ++mismatches[t];
      }
      // Printing and cloning only read, too.
      if (got[0].to_string().empty() || !table.weight().clone().equal(weight_before)) {
        ++mismatches[t];
      }
    }
  });
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
  EXPECT_TRUE(table.weight().equal(weight_before));
}

TEST(Concurrency, MaxNormForwardsWithTheCallersLock) {
  // A max_norm forward writes the rows it renormalizes: callers serialize such calls. Thread t
  // looks up rows t, t + 4, t + 8, ... only, so each row sees the same sequence of lookups as
  // in a serial run of the threads' batches one after the other, whatever the interleaving.
  Generator gen(5);
  const EmbeddingOptions options = EmbeddingOptions(40, 8).max_norm(1.0);
  Embedding serial(options, gen);
  Embedding shared(EmbeddingOptions(options)._weight(serial.weight().clone()));
  auto thread_batch = [](int t, int k) {
    std::vector<std::int64_t> v;
    for (std::int64_t j = 0; j < 5; ++j) v.push_back(kThreads * ((k * 3 + j) % 10) + t);
    return Tensor::from_vector<std::int64_t>(v, {5});
  };
  std::vector<std::vector<Tensor>> expected(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    for (int k = 0; k < kIterations; ++k) expected[t].push_back(serial(thread_batch(t, k)));
  }
  std::mutex lock;
  std::vector<int> mismatches(kThreads, 0);
  run_threads([&](int t) {
    for (int k = 0; k < kIterations; ++k) {
      Tensor out;
      {
        std::lock_guard<std::mutex> guard(lock);
        out = shared(thread_batch(t, k));
      }
      if (!out.equal(expected[t][k])) ++mismatches[t];
    }
  });
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
  EXPECT_TRUE(shared.weight().equal(serial.weight()));
}

TEST(Concurrency, SeparateModulesTrainInParallel) {
  // Writes to different tables need no lock: each thread trains its own module and optimizer,
  // and reads (save) one shared optimizer.
  Generator reference_gen(9);
  Embedding reference(EmbeddingOptions(32, 4).sparse(true), reference_gen);
  optim::Adagrad shared_opt({&reference.parameter()}, optim::AdagradOptions(0.1));
  std::stringstream expected_state;
  shared_opt.save(expected_state);
  std::vector<Tensor> results(kThreads);
  std::vector<int> mismatches(kThreads, 0);
  run_threads([&](int t) {
    Generator gen(9);
    Embedding m(EmbeddingOptions(32, 4).sparse(true), gen);
    optim::Adagrad opt({&m.parameter()}, optim::AdagradOptions(0.1));
    for (int k = 0; k < 20; ++k) {
      const Tensor ids = batch_ids(k, 32);
      opt.zero_grad();
      m.backward(ids, Tensor::full({12, 4}, 0.5, DType::kFloat32));
      opt.step();
      std::stringstream state;
      shared_opt.save(state);
      if (state.str() != expected_state.str()) ++mismatches[t];
    }
    results[t] = m.weight().clone();
  });
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(mismatches[t], 0);
    EXPECT_TRUE(results[t].equal(results[0])) << "thread " << t;
  }
}

}  // namespace
