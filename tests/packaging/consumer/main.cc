// A program outside the project that uses the installed library.
#include <emb/emb.h>

#include <iostream>

int main() {
  emb::Tensor weight = emb::Tensor::from_vector<float>({1, 2.3f, 3, 4, 5.1f, 6.3f}, {2, 3});
  emb::Embedding table = emb::Embedding::from_pretrained(weight);
  std::cout << table(emb::Tensor::from_vector<std::int64_t>({1}, {1})) << "\n";
}
