#include "train.h"

#include <fmt/format.h>

#include <atomic>
#include <barrier>
#include <cmath>
#include <exception>
#include <memory>
#include <numeric>
#include <optional>
#include <thread>

#include "emb/embedding_bag.h"
#include "emb/error.h"
#include "emb/generator.h"
#include "emb/optim.h"
#include "dense_ops.h"

namespace emb_cli {

namespace {

std::uint64_t mix(std::uint64_t x) {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

void check_hyper_params(const HyperParams& hp) {
  const auto bad = [](const std::string& what) { throw emb::ValueError("train: " + what); };
  if (hp.dim < 1 || hp.dim > 100000) bad(fmt::format("--dim {} is outside [1, 100000]", hp.dim));
  if (hp.epoch < 1) bad(fmt::format("--epoch {} must be at least 1", hp.epoch));
  if (!(hp.lr > 0) || !std::isfinite(hp.lr)) bad(fmt::format("--lr {} must be > 0", hp.lr));
  if (hp.min_count < 1) bad(fmt::format("--minCount {} must be at least 1", hp.min_count));
  if (hp.word_ngrams < 1 || hp.word_ngrams > 100) {
    bad(fmt::format("--wordNgrams {} is outside [1, 100]", hp.word_ngrams));
  }
  if (hp.word_ngrams > 1 && (hp.bucket < 1 || hp.bucket > (std::int64_t{1} << 31))) {
    bad(fmt::format("--bucket {} is outside [1, 2^31] (needed with --wordNgrams > 1)", hp.bucket));
  }
  if (hp.thread < 1 || hp.thread > 256)
    bad(fmt::format("--thread {} is outside [1, 256]", hp.thread));
  if (hp.batch < 1 || hp.batch > 65536)
    bad(fmt::format("--batch {} is outside [1, 65536]", hp.batch));
}

std::unique_ptr<emb::optim::Optimizer> make_optimizer(const std::string& name,
                                                      std::vector<emb::Parameter*> params,
                                                      double lr) {
  namespace o = emb::optim;
  if (name == "sgd") return std::make_unique<o::SGD>(params, o::SGDOptions(lr));
  if (name == "adagrad") return std::make_unique<o::Adagrad>(params, o::AdagradOptions(lr));
  if (name == "rowwise_adagrad") {
    return std::make_unique<o::RowWiseAdagrad>(params, o::RowWiseAdagradOptions(lr));
  }
  if (name == "lazy_adam") return std::make_unique<o::LazyAdam>(params, o::AdamOptions(lr));
  throw emb::ValueError(
      fmt::format("train: --optimizer {} is not one of: {}", name, optimizer_names()));
}

// What one thread computes in a step.
struct Work {
  std::vector<std::int64_t> ids, offsets;
  std::vector<float> grad_hidden, grad_output, p;
  std::optional<emb::SparseGrad> table_grad;
  double loss = 0;
  std::exception_ptr error;
};

}  // namespace

const char* optimizer_names() {
  return "sgd, adagrad, rowwise_adagrad, lazy_adam";
}

TrainResult train(const std::string& input, const HyperParams& hp_in, Progress::Style style,
                  const std::string& plot_path) {
  HyperParams hp = hp_in;
  check_hyper_params(hp);
  const TextFile file = read_text_file(input);
  Classifier model;
  model.hp = hp;
  model.vocab = build_vocabulary(file, hp.min_count);
  const Dataset data = make_dataset(file, model.vocab, model.read_options(true));

  const std::int64_t nwords = static_cast<std::int64_t>(model.vocab.words.size());
  const std::int64_t nlabels = static_cast<std::int64_t>(model.vocab.labels.size());
  const std::int64_t rows = nwords + model.bucket_rows();
  const std::int64_t dim = hp.dim;
  const std::int64_t n = data.size();

  // fastText's initialisation: table uniform in [-1/dim, 1/dim], output layer zero.
  emb::Generator gen(hp.seed);
  model.input = emb::Tensor::empty({rows, dim}, emb::DType::kFloat32);
  {
    float* w = model.input.data<float>();
    const double scale = 1.0 / static_cast<double>(dim);
    for (std::int64_t i = 0; i < model.input.numel(); ++i) {
      w[i] = static_cast<float>((2.0 * gen.uniform() - 1.0) * scale);
    }
  }
  emb::EmbeddingBag table(emb::EmbeddingBagOptions(rows, dim)
                              .mode(emb::EmbeddingBagMode::kMean)
                              .sparse(true)
                              ._weight(model.input));
  emb::Parameter output(emb::Tensor::zeros({nlabels, dim}, emb::DType::kFloat32));
  model.output = output.data();
  auto optimizer = make_optimizer(hp.optimizer, {&table.parameter(), &output}, hp.lr);
  const auto bag_options = emb::EmbeddingBagFuncOptions().mode(emb::EmbeddingBagMode::kMean);

  const auto threads = static_cast<std::size_t>(hp.thread);
  const std::int64_t per_step = hp.thread * hp.batch;
  const std::int64_t total = hp.epoch * n;
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::vector<Work> work(threads);

  Progress progress(style, hp.epoch, n);
  double epoch_loss = 0;
  std::int64_t epoch = 0, step_begin = 0;  // current epoch and the step's first position in it
  bool done = false;
  double lr_now = hp.lr;

  // Thread t's share of the step: positions [step_begin + t*batch, ... + batch) of the epoch.
  const auto compute = [&](std::size_t t) {
    Work& w = work[t];
    w.loss = 0;
    w.table_grad.reset();
    w.ids.clear();
    w.offsets.clear();
    const std::int64_t lo = std::min(n, step_begin + static_cast<std::int64_t>(t) * hp.batch);
    const std::int64_t hi = std::min(n, lo + hp.batch);
    if (lo >= hi) return;
    try {
      for (std::int64_t pos = lo; pos < hi; ++pos) {
        const std::int64_t e = order[static_cast<std::size_t>(pos)];
        w.offsets.push_back(static_cast<std::int64_t>(w.ids.size()));
        w.ids.insert(w.ids.end(), data.ids.begin() + data.offsets[e],
                     data.ids.begin() + data.offsets[e + 1]);
      }
      const std::int64_t b_count = hi - lo;
      const emb::Tensor ids = emb::Tensor::view(
          w.ids.data(), {static_cast<std::int64_t>(w.ids.size())}, emb::DType::kInt64);
      const emb::Tensor offsets =
          emb::Tensor::view(w.offsets.data(), {b_count}, emb::DType::kInt64);
      const emb::Tensor hidden = emb::embedding_bag(ids, table.weight(), offsets, bag_options);
      const float* out_w = output.data().data<float>();
      w.grad_hidden.assign(static_cast<std::size_t>(b_count * dim), 0.0f);
      w.grad_output.assign(static_cast<std::size_t>(nlabels * dim), 0.0f);
      w.p.resize(static_cast<std::size_t>(nlabels));
      for (std::int64_t b = 0; b < b_count; ++b) {
        const std::int64_t e = order[static_cast<std::size_t>(lo + b)];
        const float* h = hidden.data<float>() + b * dim;
        linear_softmax(out_w, nlabels, dim, h, w.p.data());
        const std::int64_t nl = data.label_offsets[e + 1] - data.label_offsets[e];
        const std::int64_t pick =
            nl == 1 ? 0
                    : static_cast<std::int64_t>(
                          mix(hp.seed ^ mix(static_cast<std::uint64_t>(epoch * n + e))) %
                          static_cast<std::uint64_t>(nl));
        const std::int64_t target = data.labels[data.label_offsets[e] + pick];
        w.loss += -std::log(static_cast<double>(w.p[target]) + 1e-5);
        w.p[target] -= 1.0f;  // d loss / d logits = p - onehot
        float* gh = w.grad_hidden.data() + b * dim;
        for (std::int64_t j = 0; j < nlabels; ++j) {
          // grad_hidden += (p - onehot)_j output_j; grad_output_j += (p - onehot)_j hidden
          axpy2(w.p[j], out_w + j * dim, gh, h, w.grad_output.data() + j * dim, dim);
        }
      }
      w.table_grad = emb::embedding_bag_sparse_backward(
          emb::Tensor::view(w.grad_hidden.data(), {b_count, dim}, emb::DType::kFloat32), ids,
          offsets, rows, bag_options);
    } catch (...) {
      w.error = std::current_exception();
    }
  };

  // One thread merges: gradients in thread order, then the optimizer step.
  const auto merge = [&]() {
    for (Work& w : work) {
      if (w.error) std::rethrow_exception(w.error);
    }
    emb::Tensor grad_out = emb::Tensor::zeros({nlabels, dim}, emb::DType::kFloat32);
    float* go = grad_out.data<float>();
    for (Work& w : work) {
      if (!w.table_grad) continue;
      table.parameter().accumulate_grad(*w.table_grad);
      for (std::int64_t i = 0; i < nlabels * dim; ++i) go[i] += w.grad_output[i];
      epoch_loss += w.loss;
    }
    output.accumulate_grad(std::move(grad_out));
    optimizer->set_lr(lr_now);
    optimizer->step();
    optimizer->zero_grad();
  };

  // Advances to the next step; shuffles at each epoch start. Returns false when training ends.
  emb::Generator shuffle_gen(mix(hp.seed) ^ 0x5eedULL);
  const auto shuffle = [&]() {
    for (std::int64_t i = n - 1; i > 0; --i) {
      const auto j =
          static_cast<std::int64_t>(shuffle_gen.next_u64() % static_cast<std::uint64_t>(i + 1));
      std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
    }
  };
  double last_epoch_loss = 0;
  const auto advance = [&]() {
    step_begin += per_step;
    const std::int64_t finished = epoch * n + std::min(step_begin, n);
    progress.update(finished, epoch_loss / static_cast<double>(std::min(step_begin, n)), lr_now);
    if (step_begin >= n) {
      last_epoch_loss = epoch_loss / static_cast<double>(n);
      progress.end_epoch(epoch + 1, last_epoch_loss);
      epoch_loss = 0;
      step_begin = 0;
      if (++epoch == hp.epoch) {
        done = true;
        return;
      }
      shuffle();
    }
    lr_now =
        hp.lr * (1.0 - static_cast<double>(epoch * n + step_begin) / static_cast<double>(total));
  };

  shuffle();
  if (threads == 1) {
    while (!done) {
      compute(0);
      merge();
      advance();
    }
  } else {
    std::exception_ptr merge_error;
    std::atomic<bool> stop{false};
    // Phase 1: every thread computes; completion: thread 0's merge runs inside the barrier's
    // completion step (all threads are waiting, so it is the only one touching the weights).
    auto on_phase = [&]() noexcept {
      try {
        merge();
        advance();
      } catch (...) {
        merge_error = std::current_exception();
        done = true;
      }
      if (done) stop.store(true, std::memory_order_relaxed);
    };
    std::barrier sync(static_cast<std::ptrdiff_t>(threads), on_phase);
    std::vector<std::jthread> pool;
    for (std::size_t t = 0; t < threads; ++t) {
      pool.emplace_back([&, t]() {
        while (!stop.load(std::memory_order_relaxed)) {
          compute(t);
          sync.arrive_and_wait();
        }
      });
    }
    pool.clear();  // joins
    if (merge_error) std::rethrow_exception(merge_error);
  }
  progress.finish();

  TrainResult result;
  result.seconds = progress.seconds();
  result.final_loss = last_epoch_loss;
  result.examples = n;
  if (!plot_path.empty()) {
    write_loss_svg(
        plot_path, progress.curve(), hp.epoch,
        fmt::format("emb train: {} examples, dim {}, lr {}, {} epochs", n, dim, hp.lr, hp.epoch));
  }
  model.input = table.weight();
  model.output = output.data();
  result.model = std::move(model);
  return result;
}

}  // namespace emb_cli
