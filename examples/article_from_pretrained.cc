// PyTorch's documentation example: a table from pretrained weights (frozen by default).
//   weight = torch.FloatTensor([[1, 2.3, 3], [4, 5.1, 6.3]])
//   embedding = nn.Embedding.from_pretrained(weight); embedding(torch.LongTensor([1]))
#include <emb/emb.h>

#include <iostream>

int main() {
  const emb::Tensor weight = emb::Tensor::from_vector<float>({1, 2.3f, 3, 4, 5.1f, 6.3f}, {2, 3});
  emb::Embedding embedding = emb::Embedding::from_pretrained(weight);
  const emb::Tensor input = emb::Tensor::from_vector<std::int64_t>({1}, {1});
  const emb::Tensor out = embedding(input);
  std::cout << out << "\n";
  return out.to_string() == "tensor([[4.0000, 5.1000, 6.3000]])" &&
                 !embedding.parameter().requires_grad()
             ? 0
             : 1;
}
