// emb — the command-line tool: train, test and use a text classifier built from emb's
// EmbeddingBag; make its default dataset from WordNet.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>

#include "classifier.h"
#include "emb/error.h"
#include "emb/version.h"
#include "simd_target.h"
#include "text_data.h"
#include "train.h"
#include "wordnet.h"

namespace {

using namespace emb_cli;

int run_train(const std::string& input, const std::string& output, const HyperParams& hp,
              bool quiet, const std::string& plot) {
  const Progress::Style style = Progress::detect(quiet);
  TrainResult r = train(input, hp, style, plot);
  r.model.save(output);
  if (!quiet) {
    std::fprintf(stderr,
                 "trained on %lld examples (%zu words, %zu labels) in %.2f s; final loss %.6f; "
                 "model written to %s\n",
                 static_cast<long long>(r.examples), r.model.vocab.words.size(),
                 r.model.vocab.labels.size(), r.seconds, r.final_loss, output.c_str());
  }
  return 0;
}

int run_test(const std::string& model_path, const std::string& test_path, std::int64_t k) {
  const Classifier model = Classifier::load(model_path);
  const TextFile file = read_text_file(test_path);
  const Dataset d = make_dataset(file, model.vocab, model.read_options(true));
  if (d.size() == 0) {
    throw emb::FormatError(fmt::format("{}: no examples (the file is empty or blank)", test_path));
  }
  std::int64_t true_positives = 0, predictions = 0, gold = 0;
  constexpr std::int64_t kChunk = 4096;
  for (std::int64_t begin = 0; begin < d.size(); begin += kChunk) {
    const std::int64_t end = std::min(d.size(), begin + kChunk);
    const auto top = model.predict(d, begin, end, k);
    for (std::int64_t i = begin; i < end; ++i) {
      const auto first = d.labels.begin() + d.label_offsets[i];
      const auto last = d.labels.begin() + d.label_offsets[i + 1];
      for (const auto& [label, p] : top[static_cast<std::size_t>(i - begin)]) {
        if (std::find(first, last, label) != last) ++true_positives;
      }
      predictions += static_cast<std::int64_t>(top[static_cast<std::size_t>(i - begin)].size());
      gold += last - first;
    }
  }
  // fastText's format: std::setprecision(3) on a double, i.e. printf's %.3g.
  std::printf("N\t%lld\n", static_cast<long long>(d.size()));
  std::printf("P@%lld\t%.3g\n", static_cast<long long>(k),
              static_cast<double>(true_positives) / static_cast<double>(predictions));
  std::printf("R@%lld\t%.3g\n", static_cast<long long>(k),
              static_cast<double>(true_positives) / static_cast<double>(gold));
  return 0;
}

int run_predict(const std::string& model_path, const std::string& input, std::int64_t k,
                bool prob) {
  const Classifier model = Classifier::load(model_path);
  const TextFile file = read_text_file(input);
  const Dataset d = make_dataset(file, model.vocab, model.read_options(false));
  constexpr std::int64_t kChunk = 4096;
  std::string out;
  for (std::int64_t begin = 0; begin < d.size(); begin += kChunk) {
    const std::int64_t end = std::min(d.size(), begin + kChunk);
    const auto top = model.predict(d, begin, end, k);
    for (const auto& row : top) {
      out.clear();
      for (const auto& [label, p] : row) {
        if (!out.empty()) out += ' ';
        out += model.vocab.labels[static_cast<std::size_t>(label)];
        if (prob) out += fmt::format(" {:g}", p);
      }
      std::puts(out.c_str());
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "emb: a text classifier built from emb's EmbeddingBag (fastText's supervised format).\n"
      "  emb data wordnet DIR                      make the WordNet supersense dataset\n"
      "  emb train --input DIR/train.txt --output model.emb\n"
      "  emb test model.emb DIR/test.txt [k]       N, P@k, R@k as fastText prints them\n"
      "  emb predict model.emb FILE|- [k]          the k most likely labels of each line"};
  app.require_subcommand(1);
  app.set_version_flag("--version", fmt::format("emb {}\nSIMD target: {}", emb::version(),
                                                emb_cli::simd_target_placeholder()));

  // train
  emb_cli::HyperParams hp;
  std::string input, output, plot;
  bool quiet = false;
  CLI::App* train = app.add_subcommand("train", "Train a classifier on a labelled text file");
  train->add_option("--input", input, "training file: lines of \"__label__<name> text ...\"")
      ->required();
  train->add_option("--output", output, "model file to write")->required();
  train->add_option("--dim", hp.dim, "size of the word vectors")->capture_default_str();
  train->add_option("--epoch", hp.epoch, "passes over the training file")->capture_default_str();
  train->add_option("--lr", hp.lr, "initial learning rate (decays linearly to 0)")
      ->capture_default_str();
  train->add_option("--minCount", hp.min_count, "keep words seen at least this often")
      ->capture_default_str();
  train->add_option("--wordNgrams", hp.word_ngrams, "max length of word n-grams (1: words only)")
      ->capture_default_str();
  train->add_option("--bucket", hp.bucket, "hash buckets for word n-grams")->capture_default_str();
  train->add_option("--thread", hp.thread, "training threads")->capture_default_str();
  train->add_option("--batch", hp.batch, "examples per thread per optimizer step")
      ->capture_default_str();
  train->add_option("--seed", hp.seed, "random seed (initialisation, shuffling)")
      ->capture_default_str();
  train->add_option("--optimizer", hp.optimizer, emb_cli::optimizer_names())->capture_default_str();
  train->add_flag("--quiet", quiet, "print nothing but errors");
  train->add_option("--plot", plot, "write the training loss curve to this SVG file");

  // test
  std::string model_path, data_path;
  std::int64_t k = 1;
  CLI::App* test =
      app.add_subcommand("test", "Evaluate a model: N, P@k and R@k (fastText's format)");
  test->add_option("MODEL", model_path, "model file")->required();
  test->add_option("TEST", data_path, "labelled test file")->required();
  test->add_option("k", k, "number of predictions per example")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 30));

  // predict
  bool prob = false;
  CLI::App* predict = app.add_subcommand("predict", "Print the k most likely labels of each line");
  predict->add_option("MODEL", model_path, "model file")->required();
  predict->add_option("FILE", data_path, "text file, or - for standard input")->required();
  predict->add_option("k", k, "number of labels per line")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 30));
  predict->add_flag("--prob", prob, "print each label's probability after it");

  // data wordnet
  std::string out_dir, wordnet_dir = emb_cli::kWordnetDir;
  CLI::App* data = app.add_subcommand("data", "Make a dataset");
  data->require_subcommand(1);
  CLI::App* wordnet = data->add_subcommand(
      "wordnet",
      "WordNet 3.0 synsets labelled by supersense (45 lexicographer files): writes "
      "OUTDIR/train.txt and OUTDIR/test.txt (90/10 split)");
  wordnet->add_option("OUTDIR", out_dir, "output directory")->required();
  wordnet->add_option("--wordnet-dir", wordnet_dir, "WordNet database directory")
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    if (train->parsed()) return run_train(input, output, hp, quiet, plot);
    if (test->parsed()) return run_test(model_path, data_path, k);
    if (predict->parsed()) return run_predict(model_path, data_path, k, prob);
    if (wordnet->parsed()) {
      const emb_cli::WordnetSummary s = emb_cli::make_wordnet_dataset(wordnet_dir, out_dir);
      std::printf("%s/train.txt: %lld examples\n%s/test.txt: %lld examples\n%lld labels\n",
                  out_dir.c_str(), static_cast<long long>(s.train), out_dir.c_str(),
                  static_cast<long long>(s.test), static_cast<long long>(s.labels));
      return 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "emb: error: %s\n", e.what());
    return 1;
  }
  return 1;
}
