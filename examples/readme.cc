// The example of README.md, built and run as a test so that the README stays true.
#include <emb/emb.h>
#include <iostream>

int main() {
  // A 10 x 3 table drawn from N(0, 1); row 0 is padding (zero, never gets a gradient).
  emb::Embedding table(emb::EmbeddingOptions(10, 3).padding_idx(0));

  // A batch of 2 samples of 4 ids each -> [2, 4, 3].
  emb::Tensor ids = emb::Tensor::from_vector<std::int64_t>({1, 2, 4, 5, 4, 3, 2, 9}, {2, 4});
  emb::Tensor out = table(ids);
  std::cout << out << "\n";                      // tensor([[[...]]]), printed as PyTorch does

  // Backward: the gradient of the table given the gradient of the output.
  table.backward(ids, emb::Tensor::full({2, 4, 3}, 1.0, emb::DType::kFloat32));
  std::cout << table.parameter().grad() << "\n";   // row 4 and row 2 got 2, rows 1, 3, 5, 9 got 1

  // Bags: the mean of variable-length runs of ids (offsets say where each bag starts).
  emb::EmbeddingBag bags(emb::EmbeddingBagOptions(10, 3).mode(emb::EmbeddingBagMode::kMean));
  emb::Tensor flat = emb::Tensor::from_vector<std::int64_t>({1, 2, 4, 5, 4, 3}, {6});
  emb::Tensor offsets = emb::Tensor::from_vector<std::int64_t>({0, 2}, {2});
  std::cout << bags(flat, offsets) << "\n";     // [2, 3]: mean of rows {1, 2}, of rows {4, 5, 4, 3}
}
