// The article's first example: categories M, V, Q, D, R, C embedded as 3-d vectors.
//   category_to_index = {"M": 0, "V": 1, "Q": 2, "D": 3, "R": 4, "C": 5}
//   embedding = nn.Embedding(6, 3); print(embedding(LongTensor([0, 1, 2])))
#include <emb/emb.h>

#include <iostream>
#include <map>
#include <string>
#include <vector>

int main() {
  const std::map<std::string, std::int64_t> category_to_index = {{"M", 0}, {"V", 1}, {"Q", 2},
                                                                 {"D", 3}, {"R", 4}, {"C", 5}};
  const auto num_categories = static_cast<std::int64_t>(category_to_index.size());
  const std::int64_t embedding_dim = 3;
  emb::Embedding embedding(emb::EmbeddingOptions(num_categories, embedding_dim));

  const std::vector<std::string> input_categories = {"M", "V", "Q"};
  std::vector<std::int64_t> input_indices;
  for (const std::string& c : input_categories) input_indices.push_back(category_to_index.at(c));
  const emb::Tensor input = emb::Tensor::from_vector(input_indices, {3});

  const emb::Tensor embedded_vectors = embedding(input);
  std::cout << embedding << "\n" << embedded_vectors << "\n";
  // Each output row is the table row of its category.
  for (std::int64_t i = 0; i < 3; ++i) {
    for (std::int64_t d = 0; d < embedding_dim; ++d) {
      if (embedded_vectors.at<float>(i, d) != embedding.weight().at<float>(input_indices[i], d))
        return 1;
    }
  }
  return embedded_vectors.shape() == emb::Shape{3, 3} ? 0 : 1;
}
