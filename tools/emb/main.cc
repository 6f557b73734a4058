// emb — the command-line tool: train, test and use a text classifier built from emb's
// EmbeddingBag; make its default dataset from WordNet.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "classifier.h"
#include "emb/error.h"
#include "emb/runtime.h"
#include "emb/version.h"
#include "simd_target.h"
#include "table_tools.h"
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
      "  emb predict model.emb FILE|- [k]          the k most likely labels of each line\n"
      "  emb info FILE                             tensors, shapes, dtypes, norms of a table\n"
      "  emb convert IN OUT [--dtype f16|int8|..]  any table format to any\n"
      "  emb lookup FILE word|id...                the rows of words or ids\n"
      "  emb neighbors FILE word|id... [-k 10]     exact cosine nearest neighbours"};
  app.require_subcommand(1);
  app.set_version_flag("--version", fmt::format("emb {}\nSIMD target: {}", emb::version(),
                                                emb_cli::simd_target_for_version()));

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

  // table tools: info, convert, lookup, neighbors
  emb_cli::TableToolOptions table_options;
  std::string table_path, convert_out, convert_dtype, convert_format;
  std::vector<std::string> queries;
  std::int64_t top_k = 10;
  int table_threads = 0;
  const auto add_table_options = [&](CLI::App* sub) {
    sub->add_option("--tensor", table_options.tensor,
                    "safetensors: the tensor holding the table (default: \"weight\", or the "
                    "only 2-D tensor)");
    sub->add_flag("--quiet", table_options.quiet, "no progress or timings on stderr");
  };
  CLI::App* info = app.add_subcommand(
      "info", "Describe a table file: format, tensors, shapes, dtypes, vocabulary, row norms");
  info->add_option("FILE", table_path, "table file (any supported format)")->required();
  add_table_options(info);
  CLI::App* convert = app.add_subcommand(
      "convert",
      "Convert a table between formats (safetensors, .npy, word2vec .bin, .vec/.txt, "
      ".glove) and dtypes");
  convert->add_option("IN", table_path, "input table file (any supported format)")->required();
  convert
      ->add_option("OUT", convert_out,
                   "output file; the format follows the extension (.safetensors, .npy, .bin, "
                   ".vec, .txt, .glove)")
      ->required();
  convert
      ->add_option("--dtype", convert_dtype,
                   "store the table as f32, f64, f16, bf16, int8 or int4 "
                   "(int8/int4: row-wise quantized, safetensors only)")
      ->check(CLI::IsMember({"f32", "f64", "f16", "bf16", "int8", "int4"}));
  convert->add_option("--format", convert_format,
                      "output format instead of the extension's: safetensors, npy, "
                      "word2vec-binary, text, glove");
  add_table_options(convert);
  CLI::App* lookup =
      app.add_subcommand("lookup", "Print the rows of words (or ids): \"<query> <values>\"");
  lookup->add_option("FILE", table_path, "table file")->required();
  lookup->add_option("QUERY", queries, "words of the vocabulary, or row ids (--ids)")->required();
  lookup->add_flag("--ids", table_options.ids, "the queries are row ids");
  add_table_options(lookup);
  CLI::App* neighbors = app.add_subcommand(
      "neighbors", "The k rows most similar to each query by cosine (exact, all rows)");
  neighbors->add_option("FILE", table_path, "table file")->required();
  neighbors->add_option("QUERY", queries, "words of the vocabulary, or row ids (--ids)")
      ->required();
  neighbors->add_option("-k", top_k, "neighbours per query")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40));
  neighbors->add_flag("--ids", table_options.ids, "the queries are row ids");
  neighbors
      ->add_option("--threads", table_threads, "threads (default: EMB_NUM_THREADS, else all cores)")
      ->check(CLI::Range(1, 4096));
  add_table_options(neighbors);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    if (train->parsed()) return run_train(input, output, hp, quiet, plot);
    if (test->parsed()) return run_test(model_path, data_path, k);
    if (predict->parsed()) return run_predict(model_path, data_path, k, prob);
    if (info->parsed()) return emb_cli::run_info(table_path, table_options);
    if (convert->parsed()) {
      return emb_cli::run_convert(table_path, convert_out, convert_dtype, convert_format,
                                  table_options);
    }
    if (lookup->parsed()) return emb_cli::run_lookup(table_path, queries, table_options);
    if (neighbors->parsed()) {
      if (table_threads > 0) emb::set_num_threads(table_threads);
      return emb_cli::run_neighbors(table_path, queries, top_k, table_options);
    }
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
