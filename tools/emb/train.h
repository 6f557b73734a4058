// `emb train`: fits a Classifier to a labelled text file.
//
// Per example (fastText's supervised model, softmax loss): hidden = mean of the bag's rows;
// p = softmax(output · hidden); loss = -log(p[target] + 1e-5), target one of the example's labels
// (drawn at random when it has several). Gradients: output gets (p - onehot) ⊗ hidden (dense), the
// table gets output^T (p - onehot) spread over the bag by emb::embedding_bag_sparse_backward (mode
// mean: divided by the bag size; sparse rows). An emb optimizer applies both; the learning rate
// decays linearly from lr to 0 over the run, as in fastText.
//
// Threads (deterministic data parallelism, race-free): a step takes thread × batch examples of
// the shuffled epoch; each thread computes the forward and the gradients of its batch examples
// against the same (unchanging) weights; then one thread adds the gradients to the parameters in
// thread order and runs optimizer.step(). Weights are only read while the threads compute and
// only written between two barriers, so there is no data race, and the result depends only on
// the data, the hyper-parameters and the seed: the same (seed, thread, batch) give a
// bit-identical model on every run. With thread 1 and batch 1 this is plain per-example SGD.
#pragma once

#include <string>

#include "classifier.h"
#include "progress.h"

namespace emb_cli {

struct TrainResult {
  Classifier model;
  double seconds = 0;         // training loop only
  double final_loss = 0;      // mean loss of the last epoch
  std::int64_t examples = 0;  // per epoch
};

/// Reads input, builds the vocabulary, trains. Throws emb::Error subclasses (bad input: file and
/// line; bad hyper-parameters: ValueError naming the option).
TrainResult train(const std::string& input, const HyperParams& hp, Progress::Style style,
                  const std::string& plot_path);

/// The optimizers --optimizer accepts: "sgd, adagrad, rowwise_adagrad, lazy_adam".
const char* optimizer_names();

}  // namespace emb_cli
