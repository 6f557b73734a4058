// Labelled text in fastText's supervised format, its vocabulary, and the bags of ids a model
// reads.
//
// One example a line: tokens separated by whitespace (space, tab, CR, VT, FF, NUL); tokens that
// start with "__label__" are labels, the others words. Like fastText, every line ends with the
// word "</s>". Blank lines are skipped.
//   "__label__noun.animal dog barks"  ->  labels {__label__noun.animal}, words {dog, barks, </s>}
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace emb_cli {

inline constexpr std::string_view kLabelPrefix = "__label__";
inline constexpr std::string_view kEndOfLine = "</s>";

/// fastText's string hash (32-bit FNV-1a over the bytes taken as signed chars).
std::uint32_t fasttext_hash(std::string_view s);

/// The row of a word n-gram in a table of nwords + bucket rows, as fastText computes it:
/// h = hash(w0); h = h * 116049371 + hash(wi) for the following words, row = nwords + h % bucket
/// (hashes sign-extended to 64 bits, as fastText's int32 storage does).
void add_word_ngrams(const std::vector<std::uint32_t>& hashes, int word_ngrams, std::int64_t nwords,
                     std::int64_t bucket, std::vector<std::int64_t>& ids);

/// One line split into words and labels (views into the line).
struct Tokens {
  std::vector<std::string_view> words;
  std::vector<std::string_view> labels;
};

/// Splits a line on fastText's whitespace; appends "</s>" to the words.
void tokenize(std::string_view line, Tokens& out);

/// A text file read whole, split into lines; throws IoError (cannot read) and FormatError
/// (invalid UTF-8, naming the file, the line and the byte).
struct TextFile {
  std::string path;  // as given ("-" for stdin)
  std::string text;
  std::vector<std::string_view> lines;
};
TextFile read_text_file(const std::string& path);

/// std::hash over string views, so maps keyed by std::string can be searched with a view.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIndex = std::unordered_map<std::string, std::int64_t, StringHash, std::equal_to<>>;

/// Words and labels with their training counts. Ids: words by descending count (ties in order
/// of first appearance), then the same for labels.
struct Vocabulary {
  std::vector<std::string> words;
  std::vector<std::int64_t> word_counts;
  std::vector<std::string> labels;
  std::vector<std::int64_t> label_counts;
  StringIndex word_index;
  StringIndex label_index;

  /// Builds word_index and label_index; throws FormatError for an empty, duplicate or
  /// whitespace-holding entry (a model file's vocabulary is checked this way).
  void build_index();
  std::int64_t word_id(std::string_view w) const;   // -1 if unknown
  std::int64_t label_id(std::string_view l) const;  // -1 if unknown
};

/// Counts the training file's words and labels, keeps words seen at least min_count times.
/// Throws FormatError for a line with words but no label or labels but no words (file and line),
/// and when no example remains.
Vocabulary build_vocabulary(const TextFile& file, std::int64_t min_count);

/// Examples as bags: example i has ids[offsets[i] .. offsets[i + 1]) (word rows, then n-gram
/// rows) and labels[label_offsets[i] .. label_offsets[i + 1]); line[i] is its 1-based line.
struct Dataset {
  std::vector<std::int64_t> ids;
  std::vector<std::int64_t> offsets{0};
  std::vector<std::int64_t> labels;
  std::vector<std::int64_t> label_offsets{0};
  std::vector<std::int64_t> line;
  std::int64_t size() const { return static_cast<std::int64_t>(offsets.size()) - 1; }
};

/// How lines become examples.
struct ReadOptions {
  int word_ngrams = 1;
  std::int64_t bucket = 0;
  /// Every line must hold a label, each known to the vocabulary (training, testing); otherwise
  /// labels are ignored (prediction) and every non-blank line is an example.
  bool labels_required = true;
};

/// Turns lines into bags of ids; unknown words are dropped (their hashes still feed n-grams, as
/// in fastText). Throws FormatError for a line without label or text, or with an unknown label
/// (labels_required), naming the file and line.
Dataset make_dataset(const TextFile& file, const Vocabulary& vocab, const ReadOptions& options);

}  // namespace emb_cli
