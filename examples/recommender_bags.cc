// Pooling variable-length bags of category ids, as a recommender does: each user has a history of
// item categories of any length (possibly none); an EmbeddingBag turns each history into one
// vector (the mean of its category rows), and a training step pushes the rows toward a target.
#include <cstdint>
#include <iostream>
#include <vector>

#include "emb/emb.h"

int main() {
  using emb::EmbeddingBagMode;
  emb::manual_seed(0);

  // 8 categories, 4-dimensional vectors; id 0 means "unknown category" and is ignored.
  emb::EmbeddingBag categories(
      emb::EmbeddingBagOptions(8, 4).mode(EmbeddingBagMode::kMean).padding_idx(0));
  std::cout << categories << "\n";

  // Three users' histories, concatenated; offsets mark where each user starts.
  //   user 0: [3, 5, 5]   user 1: []   user 2: [0, 7, 2, 6]  (0 is skipped, so a mean of 3)
  const std::vector<std::int64_t> history = {3, 5, 5, 0, 7, 2, 6};
  const std::vector<std::int64_t> starts = {0, 3, 3};
  emb::Tensor ids = emb::Tensor::from_vector<std::int64_t>(history, {7});
  emb::Tensor offsets = emb::Tensor::from_vector<std::int64_t>(starts, {3});

  emb::Tensor users = categories(ids, offsets);  // [3, 4]; user 1 has no history -> zeros
  std::cout << "user vectors:\n" << users << "\n";

  // Recency weights: a weighted sum (mode sum) instead of a mean.
  emb::EmbeddingBag weighted = emb::EmbeddingBag::from_pretrained(
      categories.weight(), emb::EmbeddingBagFromPretrainedOptions().mode(EmbeddingBagMode::kSum));
  emb::Tensor recency =
      emb::Tensor::from_vector<float>({0.25f, 0.5f, 1.0f, 0.0f, 0.25f, 0.5f, 1.0f}, {7});
  std::cout << "recency-weighted:\n" << weighted(ids, offsets, recency) << "\n";

  // One step of plain SGD on a squared loss toward target vectors: grad = 2 (out - target).
  emb::Tensor target = emb::Tensor::full({3, 4}, 0.5, emb::DType::kFloat32);
  emb::Tensor grad = emb::Tensor::empty({3, 4}, emb::DType::kFloat32);
  for (std::int64_t i = 0; i < 12; ++i) {
    grad.set_double(i, 2.0 * (users.get_double(i) - target.get_double(i)));
  }
  categories.backward(ids, offsets, grad);
  const emb::Tensor& g = categories.parameter().grad();
  const emb::Tensor& w = categories.weight();
  const double lr = 0.1;
  for (std::int64_t i = 0; i < w.numel(); ++i)
    w.set_double(i, w.get_double(i) - lr * g.get_double(i));
  std::cout << "after one step:\n" << categories(ids, offsets) << "\n";

  // A malformed batch is rejected with a clear message and changes nothing.
  try {
    categories(ids, emb::Tensor::from_vector<std::int64_t>({0, 5, 3}, {3}));
  } catch (const emb::ValueError& e) {
    std::cout << "rejected: " << e.what() << "\n";
  }
  return 0;
}
