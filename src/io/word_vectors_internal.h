// The word-vector readers without WordVectors::index (load_table keeps only the vocabulary).
#pragma once

#include <string>

#include "emb/io/word_vectors.h"

namespace emb::io::internal {

/// read_text_vectors / read_word2vec_binary, the same checks, index left empty.
WordVectors read_text_vectors_unindexed(const std::string& path);
WordVectors read_word2vec_binary_unindexed(const std::string& path);

}  // namespace emb::io::internal
