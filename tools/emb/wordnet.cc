#include "wordnet.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "emb/error.h"

namespace emb_cli {

namespace {

// lexnames(5WN): lexicographer file number -> name. (wordnet-base ships no lexnames file.)
constexpr std::array<const char*, 45> kLexnames = {
    "adj.all",          "adj.pert",           "adv.all",
    "noun.Tops",        "noun.act",           "noun.animal",
    "noun.artifact",    "noun.attribute",     "noun.body",
    "noun.cognition",   "noun.communication", "noun.event",
    "noun.feeling",     "noun.food",          "noun.group",
    "noun.location",    "noun.motive",        "noun.object",
    "noun.person",      "noun.phenomenon",    "noun.plant",
    "noun.possession",  "noun.process",       "noun.quantity",
    "noun.relation",    "noun.shape",         "noun.state",
    "noun.substance",   "noun.time",          "verb.body",
    "verb.change",      "verb.cognition",     "verb.communication",
    "verb.competition", "verb.consumption",   "verb.contact",
    "verb.creation",    "verb.emotion",       "verb.motion",
    "verb.perception",  "verb.possession",    "verb.social",
    "verb.stative",     "verb.weather",       "adj.ppl"};

std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 14695981039346656037ULL;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

// Lower-cased a-z0-9 runs of text, each followed by a space.
void append_words(std::string_view text, std::string& out) {
  bool in_word = false;
  for (char c : text) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    const bool upper = c >= 'A' && c <= 'Z';
    if (alnum || upper) {
      out.push_back(upper ? static_cast<char>(c - 'A' + 'a') : c);
      in_word = true;
    } else if (in_word) {
      out.push_back(' ');
      in_word = false;
    }
  }
  if (in_word) out.push_back(' ');
}

struct Example {
  std::uint64_t hash;
  std::string key;  // "<pos>:<offset>", tie-breaker
  std::string line;
};

void write_file(const std::filesystem::path& path, std::vector<Example>& examples) {
  std::sort(examples.begin(), examples.end(), [](const Example& a, const Example& b) {
    return a.hash != b.hash ? a.hash < b.hash : a.key < b.key;
  });
  const std::string tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw emb::IoError(fmt::format("{}: cannot create the file", tmp));
    for (const Example& e : examples) out << e.line << '\n';
    if (!out.flush()) throw emb::IoError(fmt::format("{}: write failed", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec)
    throw emb::IoError(
        fmt::format("{}: cannot rename into place: {}", path.string(), ec.message()));
}

}  // namespace

WordnetSummary make_wordnet_dataset(const std::string& source_dir, const std::string& out_dir) {
  std::vector<Example> train, test;
  std::set<int> labels;
  for (const char* part : {"noun", "verb", "adj", "adv"}) {
    const std::string path = fmt::format("{}/data.{}", source_dir, part);
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      throw emb::IoError(fmt::format(
          "{}: cannot open the WordNet database file (install Debian's wordnet-base, or pass "
          "--wordnet-dir)",
          path));
    }
    std::string raw;
    std::int64_t lineno = 0;
    while (std::getline(in, raw)) {
      ++lineno;
      if (raw.empty() || raw[0] == ' ') continue;  // the license header lines start with spaces
      const auto bad = [&](const std::string& why) {
        return emb::FormatError(fmt::format("{}:{}: {}", path, lineno, why));
      };
      const std::size_t bar = raw.find(" | ");
      std::istringstream fields(raw.substr(0, bar));
      std::string offset, lexfile, pos, wcnt_hex;
      if (!(fields >> offset >> lexfile >> pos >> wcnt_hex) || offset.size() != 8 ||
          pos.size() != 1 || std::string_view("nvasr").find(pos[0]) == std::string_view::npos) {
        throw bad("not a synset line (offset lex_filenum ss_type w_cnt ...)");
      }
      int lex = -1, wcnt = -1;
      try {
        lex = std::stoi(lexfile);
        wcnt = std::stoi(wcnt_hex, nullptr, 16);
      } catch (const std::exception&) {
        throw bad("lex_filenum or w_cnt is not a number");
      }
      if (lex < 0 || lex >= static_cast<int>(kLexnames.size())) {
        throw bad(fmt::format("lex_filenum {} is outside [0, {}]", lex, kLexnames.size() - 1));
      }
      if (wcnt < 1) throw bad(fmt::format("w_cnt {} (at least one word expected)", wcnt));
      std::string text;
      for (int i = 0; i < wcnt; ++i) {
        std::string word, lex_id;
        if (!(fields >> word >> lex_id))
          throw bad(fmt::format("word {} of {} missing", i + 1, wcnt));
        const std::size_t paren = word.find('(');  // adjective markers: word(a), word(p), word(ip)
        append_words(std::string_view(word).substr(0, paren), text);
      }
      if (bar != std::string::npos) append_words(std::string_view(raw).substr(bar + 3), text);
      if (!text.empty()) text.pop_back();
      const char split_pos = pos[0] == 's' ? 'a' : pos[0];
      Example e;
      e.key = fmt::format("{}:{}", split_pos, offset);
      e.hash = fnv1a64(e.key);
      e.line = fmt::format("__label__{} {}", kLexnames[static_cast<std::size_t>(lex)], text);
      labels.insert(lex);
      (e.hash % 10 == 0 ? test : train).push_back(std::move(e));
    }
    if (in.bad()) throw emb::IoError(fmt::format("{}: read error", path));
  }
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec)
    throw emb::IoError(fmt::format("{}: cannot create the directory: {}", out_dir, ec.message()));
  WordnetSummary s{static_cast<std::int64_t>(train.size()), static_cast<std::int64_t>(test.size()),
                   static_cast<std::int64_t>(labels.size())};
  write_file(std::filesystem::path(out_dir) / "train.txt", train);
  write_file(std::filesystem::path(out_dir) / "test.txt", test);
  return s;
}

}  // namespace emb_cli
