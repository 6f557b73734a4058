// PyTorch's documentation example for max_norm: the forward renormalizes the looked-up rows of
// the weight in place, so a computation that needs the old weight must use a clone.
//   n, d, m = 3, 5, 7
//   embedding = nn.Embedding(n, d, max_norm=True)
//   W = torch.randn((m, d), requires_grad=True); idx = torch.tensor([1, 2])
//   a = embedding.weight.clone() @ W.t()   # weight must be cloned for this to be differentiable
//   b = embedding(idx) @ W.t()             # modifies weight in-place
//   out = (a.unsqueeze(0) + b.unsqueeze(1)); loss = out.sigmoid().prod(); loss.backward()
// emb has no autograd: the chain rule down to the embedding output is written out here, and
// Embedding::backward takes it from there.
#include <emb/emb.h>

#include <cmath>
#include <iostream>
#include <vector>

namespace {

// x [r, d] @ w.t() with w [m, d] -> [r, m]
std::vector<double> matmul_t(const emb::Tensor& x, const emb::Tensor& w) {
  const std::int64_t r = x.size(0), d = x.size(1), m = w.size(0);
  std::vector<double> out(static_cast<std::size_t>(r * m), 0.0);
  for (std::int64_t i = 0; i < r; ++i) {
    for (std::int64_t j = 0; j < m; ++j) {
      for (std::int64_t k = 0; k < d; ++k)
        out[i * m + j] += x.get_double(i * d + k) * w.get_double(j * d + k);
    }
  }
  return out;
}

double row_norm(const emb::Tensor& w, std::int64_t row) {
  double s = 0;
  for (std::int64_t k = 0; k < w.size(1); ++k)
    s += w.get_double(row * w.size(1) + k) * w.get_double(row * w.size(1) + k);
  return std::sqrt(s);
}

}  // namespace

int main() {
  const std::int64_t n = 3, d = 5, m = 7;
  const double max_norm = 1.0;  // max_norm=True
  emb::Embedding embedding(emb::EmbeddingOptions(n, d).max_norm(max_norm));
  emb::Generator gen(0);
  const emb::Tensor W = emb::Tensor::empty({m, d}, emb::DType::kFloat32);
  gen.normal_(W);
  const emb::Tensor idx = emb::Tensor::from_vector<std::int64_t>({1, 2}, {2});

  std::cout << embedding << "\nrow norms before:";
  for (std::int64_t r = 0; r < n; ++r) std::cout << " " << row_norm(embedding.weight(), r);
  const std::vector<double> a = matmul_t(embedding.weight().clone(), W);  // [n, m]
  const emb::Tensor looked_up = embedding(idx);                           // renorms rows 1, 2
  const std::vector<double> b = matmul_t(looked_up, W);                   // [2, m]
  std::cout << "\nrow norms after: ";
  for (std::int64_t r = 0; r < n; ++r) std::cout << " " << row_norm(embedding.weight(), r);
  std::cout << "\n";

  // out[i][j][k] = a[j][k] + b[i][k], shape (2, 3, 7); loss = prod(sigmoid(out)).
  double loss = 1.0;
  std::vector<double> sig(2 * n * m);
  for (std::int64_t i = 0; i < 2; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      for (std::int64_t k = 0; k < m; ++k) {
        sig[(i * n + j) * m + k] = 1.0 / (1.0 + std::exp(-(a[j * m + k] + b[i * m + k])));
        loss *= sig[(i * n + j) * m + k];
      }
    }
  }
  // dloss/db[i][k] = sum_j loss * (1 - sigmoid(out[i][j][k])); dloss/dlooked_up = dloss/db @ W.
  const emb::Tensor grad_out = emb::Tensor::zeros({2, d}, emb::DType::kFloat32);
  for (std::int64_t i = 0; i < 2; ++i) {
    for (std::int64_t k = 0; k < m; ++k) {
      double g = 0;
      for (std::int64_t j = 0; j < n; ++j) g += loss * (1.0 - sig[(i * n + j) * m + k]);
      for (std::int64_t c = 0; c < d; ++c) {
        grad_out.at<float>(i, c) += static_cast<float>(g * W.get_double(k * d + c));
      }
    }
  }
  embedding.backward(idx, grad_out);
  std::cout << "out shape [2, 3, 7], loss " << loss << "\ngradient of the weight:\n"
            << embedding.parameter().grad() << "\n";
  for (std::int64_t r = 1; r < n; ++r) {
    // looked-up rows renormed: norm = max_norm * norm / (norm + 1e-7), up to float rounding
    if (row_norm(embedding.weight(), r) > max_norm * (1 + 1e-6)) return 1;
  }
  return 0;
}
