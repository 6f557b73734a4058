// PyTorch's documentation example: changing the pad vector.
//   embedding = nn.Embedding(3, 3, padding_idx=0)
//   with torch.no_grad(): embedding.weight[padding_idx] = torch.ones(3)
// The padding row is only zeroed at initialization; the lookup returns whatever it holds, and
// it still receives no gradient.
#include <emb/emb.h>

#include <iostream>
#include <string>

namespace {

void print_parameter(const emb::Tensor& w) {
  std::string s = w.to_string();
  s.insert(s.size() - 1, ", requires_grad=True");
  std::cout << "Parameter containing:\n" << s << "\n";
}

}  // namespace

int main() {
  const std::int64_t padding_idx = 0;
  emb::Embedding embedding(emb::EmbeddingOptions(3, 3).padding_idx(padding_idx));
  print_parameter(embedding.weight());
  embedding.weight().select(padding_idx).fill_(1.0);  // no autograd in emb: a plain write
  print_parameter(embedding.weight());

  const emb::Tensor ids = emb::Tensor::from_vector<std::int64_t>({0, 1}, {2});
  const emb::Tensor out = embedding(ids);
  embedding.backward(ids, emb::Tensor::full({2, 3}, 1.0, emb::DType::kFloat32));
  const emb::Tensor& grad = embedding.parameter().grad();
  std::cout << "lookup of [0, 1]:\n"
            << out << "\ngradient (padding row gets none):\n"
            << grad << "\n";
  return out.at<float>(0, 0) == 1.0f && grad.at<float>(0, 0) == 0.0f && grad.at<float>(1, 0) == 1.0f
             ? 0
             : 1;
}
