// PyTorch's documentation example: a 10 x 3 table, a batch of 2 samples of 4 indices each.
//   embedding = nn.Embedding(10, 3)
//   input = torch.LongTensor([[1, 2, 4, 5], [4, 3, 2, 9]]); embedding(input)  # shape (2, 4, 3)
#include <emb/emb.h>

#include <iostream>

int main() {
  emb::Embedding embedding(emb::EmbeddingOptions(10, 3));
  const emb::Tensor input =
      emb::Tensor::from_vector<std::int64_t>({1, 2, 4, 5, 4, 3, 2, 9}, {2, 4});
  const emb::Tensor out = embedding(input);
  std::cout << out << "\n";
  std::cout << "shape " << emb::shape_to_string(out.shape()) << "\n";
  // The same id gives the same row wherever it appears: input[0][2] == input[1][0] == 4.
  for (std::int64_t d = 0; d < 3; ++d) {
    if (out.at<float>(0, 2, d) != out.at<float>(1, 0, d)) return 1;
  }
  return out.shape() == emb::Shape{2, 4, 3} ? 0 : 1;
}
