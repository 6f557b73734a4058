// `emb data wordnet`: WordNet 3.0's synsets as a labelled text dataset.
//
// One example per synset of data.noun, data.verb, data.adj and data.adv: the label is the
// synset's lexicographer file (one of 45 supersenses, lexnames(5WN): noun.animal, verb.motion,
// adj.all, ...), the text its lemmas followed by its gloss (definition and example sentences),
// lower-cased, with every character other than a-z and 0-9 a separator:
//   00001740 29 v 04 breathe 0 take_a_breath 0 ... | draw air into, and expel out of, the lungs
//   -> __label__verb.body breathe take a breath ... draw air into and expel out of the lungs
// Split: a synset goes to test.txt when FNV-1a-64("<pos>:<offset>") % 10 == 0 (pos n, v, a, r;
// satellite adjectives "s" count as "a"), else to train.txt; both files list their synsets in
// the order of that hash (a fixed shuffle), so the split and the order never change.
#pragma once

#include <cstdint>
#include <string>

namespace emb_cli {

struct WordnetSummary {
  std::int64_t train = 0;
  std::int64_t test = 0;
  std::int64_t labels = 0;
};

/// Reads source_dir/data.{noun,verb,adj,adv}, writes out_dir/train.txt and out_dir/test.txt
/// (creating out_dir; each file written whole, then renamed into place). Throws IoError (missing
/// files: install wordnet-base) and FormatError (file and line of a malformed entry).
WordnetSummary make_wordnet_dataset(const std::string& source_dir, const std::string& out_dir);

/// Where Debian's wordnet-base installs the database.
inline constexpr const char* kWordnetDir = "/usr/share/wordnet";

}  // namespace emb_cli
