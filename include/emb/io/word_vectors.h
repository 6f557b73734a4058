// emb/io/word_vectors.h — word vectors with their vocabulary: word2vec text and binary, GloVe
// and fastText .vec text. See docs/FORMATS.md.
//
//   word2vec text, fastText .vec   "<count> <dim>\n" then "<word> <v1> ... <vdim>\n" per word
//   GloVe                          the same lines without the "<count> <dim>" header
//   word2vec binary                "<count> <dim>\n" then per word: "<word> " and dim float32
//                                  (little-endian), optionally followed by '\n'
//
//   emb::io::WordVectors wv = emb::io::read_word2vec_binary("vectors.bin");
//   emb::Embedding table = emb::Embedding::from_pretrained(wv.vectors);
//   std::int64_t id = wv.index.at("king");
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "emb/tensor.h"

namespace emb::io {

/// A vocabulary and its vectors: row i of vectors [count, dim] float32 is words[i].
struct WordVectors {
  std::vector<std::string> words;
  Tensor vectors;
  /// word -> row, filled by the readers (and by build_index()).
  std::unordered_map<std::string, std::int64_t> index;

  /// The row of word, if it is in the vocabulary.
  std::optional<std::int64_t> find(const std::string& word) const;
  /// Rebuilds index from words; throws ValueError for a duplicate word.
  void build_index();
};

/// Text with or without the "<count> <dim>" header (GloVe, fastText .vec, word2vec text):
/// a first line of exactly two integers is the header, and then exactly count lines must
/// follow. Throws IoError (cannot open) or FormatError naming the file, the line and what is
/// wrong: a bad header, a line whose value count is not dim, a value that is not a number, an
/// empty, duplicate or invalid UTF-8 word, fewer or more lines than the header says.
WordVectors read_text_vectors(const std::string& path);
/// word2vec's binary format. Throws as read_text_vectors, and FormatError for a truncated
/// vector or a count and dim that the file's size cannot hold.
WordVectors read_word2vec_binary(const std::string& path);

/// The same from bytes in memory; `name` stands for the file in messages.
WordVectors parse_text_vectors(std::span<const std::byte> bytes, const std::string& name);
WordVectors parse_word2vec_binary(std::span<const std::byte> bytes, const std::string& name);

/// How write_text_vectors starts the file.
enum class TextHeader : std::uint8_t { kCount, kNone };  // word2vec/.vec, GloVe

/// Writes one line per word, values as the shortest decimal that reads back to the same
/// float32 (so text round trips are exact), atomically. vectors: [count, dim] float32 (other
/// floating dtypes are converted). Words must be non-empty, distinct, valid UTF-8 and free of
/// whitespace. Throws ValueError or IoError.
void write_text_vectors(const std::string& path, const WordVectors& wv,
                        TextHeader header = TextHeader::kCount);
/// word2vec binary (each vector followed by '\n', as word2vec writes it), atomically.
void write_word2vec_binary(const std::string& path, const WordVectors& wv);

/// The index of the first byte of the first invalid UTF-8 sequence in bytes (a stray or missing
/// continuation byte, an overlong form, a surrogate, a code point past U+10FFFF), or
/// std::string_view::npos when all of bytes is valid UTF-8. What the readers check words with.
std::size_t find_invalid_utf8(std::string_view bytes);

}  // namespace emb::io
