// The text classifier: the mean of a bag of word (and word n-gram) rows, a linear layer, a
// softmax. Built only on emb's public API: the table is an emb::EmbeddingBag (mode mean), the
// output layer an emb::Parameter; the model file is a safetensors file (emb/io/safetensors.h).
//
//   hidden = mean(input[ids])                 [dim]       (emb::embedding_bag, mode mean)
//   logits = output · hidden                  [nlabels]
//   p = softmax(logits)
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "emb/tensor.h"
#include "text_data.h"

namespace emb_cli {

/// What training used; saved with the model.
struct HyperParams {
  std::int64_t dim = 50;
  std::int64_t epoch = 10;
  double lr = 0.5;
  std::int64_t min_count = 1;
  std::int64_t word_ngrams = 1;
  std::int64_t bucket = 2000000;
  std::int64_t thread = 2;
  std::int64_t batch = 8;
  std::uint64_t seed = 0;
  std::string optimizer = "sgd";
};

/// Layout version of the model file; a file with another one is refused.
inline constexpr const char* kModelFormat = "emb-text-classifier";
inline constexpr const char* kModelFormatVersion = "1";

struct Classifier {
  HyperParams hp;
  Vocabulary vocab;
  emb::Tensor input;   // [nwords + bucket, dim] float32 (bucket 0 when word_ngrams == 1)
  emb::Tensor output;  // [nlabels, dim] float32

  std::int64_t rows() const { return input.size(0); }
  std::int64_t bucket_rows() const { return hp.word_ngrams > 1 ? hp.bucket : 0; }
  ReadOptions read_options(bool labels_required) const {
    return {static_cast<int>(hp.word_ngrams), bucket_rows(), labels_required};
  }

  /// Writes the model (weights, vocabulary, labels, hyper-parameters) to path atomically.
  void save(const std::string& path) const;
  /// Reads and checks a model file; throws IoError / FormatError naming the file.
  static Classifier load(const std::string& path);

  /// The k most probable labels of examples [begin, end) of d, most probable first
  /// (ties: lower label id first): for each example, (label id, probability) pairs.
  std::vector<std::vector<std::pair<std::int64_t, float>>> predict(const Dataset& d,
                                                                   std::int64_t begin,
                                                                   std::int64_t end,
                                                                   std::int64_t k) const;
};

/// logits[j] = dot(w[j], h) for j < rows, then p = softmax(logits) in place (max subtracted).
void linear_softmax(const float* w, std::int64_t rows, std::int64_t dim, const float* h, float* p);

}  // namespace emb_cli
