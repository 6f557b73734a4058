// PyTorch's documentation example with padding_idx: the padding row of a fresh table is zero.
//   embedding = nn.Embedding(10, 3, padding_idx=0)
//   input = torch.LongTensor([[0, 2, 0, 5]]); embedding(input)
#include <emb/emb.h>

#include <iostream>

int main() {
  emb::Embedding embedding(emb::EmbeddingOptions(10, 3).padding_idx(0));
  const emb::Tensor input = emb::Tensor::from_vector<std::int64_t>({0, 2, 0, 5}, {1, 4});
  const emb::Tensor out = embedding(input);
  std::cout << embedding << "\n" << out << "\n";
  for (std::int64_t d = 0; d < 3; ++d) {
    if (out.at<float>(0, 0, d) != 0.0f || out.at<float>(0, 2, d) != 0.0f) return 1;
  }
  return 0;
}
