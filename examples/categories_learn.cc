// The categories of the nn.Embedding article learn with sparse gradients.
//
// Six categories {"M":0, "V":1, "Q":2, "D":3, "R":4, "C":5} get 3-dimensional embeddings. M, V, Q
// appear together in baskets, and so do D, R, C; the two groups never meet. Each step takes a few
// random pairs, scores a pair by the dot product of its embeddings, and pushes co-occurring pairs
// together and the others apart (logistic loss). The embedding produces sparse gradients, so each
// step's SparseAdam update touches only the categories in that step's pairs.
//
// Objective: every co-occurring pair ends up closer (cosine similarity) than every pair that never
// co-occurs. The program prints the loss as it falls and exits non-zero if the objective is not
// met.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "emb/emb.h"

namespace {

const std::array<std::string, 6> kNames = {"M", "V", "Q", "D", "R", "C"};

struct Pair {
  std::int64_t a, b;
  float label;  // +1 co-occur, -1 never
};

std::vector<Pair> all_pairs() {
  std::vector<Pair> pairs;
  for (std::int64_t a = 0; a < 6; ++a) {
    for (std::int64_t b = a + 1; b < 6; ++b)
      pairs.push_back({a, b, (a < 3) == (b < 3) ? 1.0f : -1.0f});
  }
  return pairs;
}

float dot(const emb::Tensor& w, std::int64_t a, std::int64_t b) {
  float s = 0;
  for (std::int64_t d = 0; d < w.size(1); ++d) s += w.at<float>(a, d) * w.at<float>(b, d);
  return s;
}

float cosine(const emb::Tensor& w, std::int64_t a, std::int64_t b) {
  return dot(w, a, b) / std::sqrt(dot(w, a, a) * dot(w, b, b));
}

// Mean logistic loss log(1 + exp(-label * <e_a, e_b>)) over pairs.
double loss(const emb::Tensor& w, const std::vector<Pair>& pairs) {
  double total = 0;
  for (const Pair& p : pairs) total += std::log1p(std::exp(-p.label * dot(w, p.a, p.b)));
  return total / static_cast<double>(pairs.size());
}

// One step on a batch of pairs: forward, the loss's gradient w.r.t. the looked-up rows, sparse
// backward into the table, optimizer step.
void train_step(emb::Embedding& table, emb::optim::Optimizer& opt, const std::vector<Pair>& batch) {
  const auto n = static_cast<std::int64_t>(batch.size());
  std::vector<std::int64_t> left, right;
  for (const Pair& p : batch) {
    left.push_back(p.a);
    right.push_back(p.b);
  }
  const emb::Tensor ids_a = emb::Tensor::from_vector<std::int64_t>(left, {n});
  const emb::Tensor ids_b = emb::Tensor::from_vector<std::int64_t>(right, {n});
  const emb::Tensor ea = table(ids_a);  // [n, 3]
  const emb::Tensor eb = table(ids_b);  // [n, 3]
  const std::int64_t dim = ea.size(1);
  emb::Tensor grad_a = emb::Tensor::empty({n, dim}, emb::DType::kFloat32);
  emb::Tensor grad_b = emb::Tensor::empty({n, dim}, emb::DType::kFloat32);
  for (std::int64_t i = 0; i < n; ++i) {
    float s = 0;
    for (std::int64_t d = 0; d < dim; ++d) s += ea.at<float>(i, d) * eb.at<float>(i, d);
    const float y = batch[static_cast<std::size_t>(i)].label;
    // d/ds log(1 + exp(-y s)) = -y * sigmoid(-y s); averaged over the batch.
    const float coef = -y / (1.0f + std::exp(y * s)) / static_cast<float>(n);
    for (std::int64_t d = 0; d < dim; ++d) {
      grad_a.at<float>(i, d) = coef * eb.at<float>(i, d);
      grad_b.at<float>(i, d) = coef * ea.at<float>(i, d);
    }
  }
  opt.zero_grad();
  table.backward(ids_a, grad_a);  // sparse: rows of ids_a only
  table.backward(ids_b, grad_b);  // appended to the same sparse gradient
  opt.step();
}

}  // namespace

int main() {
  emb::Generator gen(2024);
  emb::Embedding table(emb::EmbeddingOptions(6, 3).sparse(true), gen);
  emb::optim::SparseAdam opt({&table.parameter()}, emb::optim::SparseAdamOptions(0.05));
  const std::vector<Pair> pairs = all_pairs();
  std::mt19937 rng(7);

  const double start = loss(table.weight(), pairs);
  std::printf("step %4d  loss %.4f\n", 0, start);
  double last = start;
  constexpr int kSteps = 600;
  for (int step = 1; step <= kSteps; ++step) {
    std::vector<Pair> batch;
    std::sample(pairs.begin(), pairs.end(), std::back_inserter(batch), 4, rng);
    train_step(table, opt, batch);
    if (step % 50 == 0) {
      last = loss(table.weight(), pairs);
      std::printf("step %4d  loss %.4f\n", step, last);
    }
  }

  float worst_together = 1, best_apart = -1;
  for (const Pair& p : pairs) {
    const float c = cosine(table.weight(), p.a, p.b);
    if (p.label > 0)
      worst_together = std::min(worst_together, c);
    else
      best_apart = std::max(best_apart, c);
  }
  std::printf("\ncosine similarity:\n    ");
  for (const auto& name : kNames) std::printf("%7s", name.c_str());
  std::printf("\n");
  for (std::int64_t a = 0; a < 6; ++a) {
    std::printf("%4s", kNames[static_cast<std::size_t>(a)].c_str());
    for (std::int64_t b = 0; b < 6; ++b) std::printf("%7.3f", cosine(table.weight(), a, b));
    std::printf("\n");
  }
  const bool met = worst_together > best_apart && last < start / 4;
  std::printf("\nleast similar co-occurring pair %.3f, most similar never-co-occurring pair %.3f\n",
              worst_together, best_apart);
  std::printf("loss %.4f -> %.4f: objective %s\n", start, last, met ? "met" : "NOT met");
  return met ? 0 : 1;
}
