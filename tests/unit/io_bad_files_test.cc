// Bad files: every reader answers truncated files, wrong magic, lying headers, out-of-file and
// overlapping ranges, absurd dimensions, invalid UTF-8 and duplicate names with a FormatError
// that names the file and what is wrong. (Run under AddressSanitizer too.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <span>
#include <type_traits>

#include "emb/io/npy.h"
#include "emb/io/safetensors.h"
#include "emb/io/table.h"
#include "emb/io/word_vectors.h"
#include "expect_error.h"
#include "io_test_util.h"

namespace emb {
namespace {

using emb::testing::expect_error;
using emb::testing::read_file;
using emb::testing::safetensors_bytes;
using emb::testing::TempDir;
using emb::testing::write_file;

class BadFiles : public ::testing::Test {
 protected:
  // Writes bytes to a file named `name` and expects `read` of it to throw FormatError with the
  // file's name and every needle.
  template <typename Read>
  void expect_bad(const std::string& name, const std::string& bytes, Read read,
                  std::vector<std::string> needles) {
    const std::string path = dir_.file(name);
    write_file(path, bytes);
    needles.push_back(name);
    expect_error<FormatError>([&] { (void)read(path); }, needles);
  }
  void safetensors(const std::string& header, const std::string& data,
                   std::vector<std::string> needles) {
    expect_bad(
        "bad.safetensors", safetensors_bytes(header, data),
        [](const std::string& p) { return io::read_safetensors(p, io::Access::kMap); },
        std::move(needles));
  }
  void npy(const std::string& bytes, std::vector<std::string> needles) {
    expect_bad(
        "bad.npy", bytes, [](const std::string& p) { return io::read_npy(p); }, std::move(needles));
  }
  void text(const std::string& bytes, std::vector<std::string> needles) {
    expect_bad(
        "bad.vec", bytes, [](const std::string& p) { return io::read_text_vectors(p); },
        std::move(needles));
  }
  void binary(const std::string& bytes, std::vector<std::string> needles) {
    expect_bad(
        "bad.bin", bytes, [](const std::string& p) { return io::read_word2vec_binary(p); },
        std::move(needles));
  }

  TempDir dir_;
};

std::string f32_entry(const std::string& name, const std::string& shape, std::uint64_t begin,
                      std::uint64_t end, const std::string& dtype = "F32") {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(end) + "]}";
}

TEST_F(BadFiles, SafetensorsTruncatedAndLyingLengths) {
  expect_bad("bad.safetensors", "", [](const std::string& p) { return io::read_safetensors(p); },
             {"truncated", "0 bytes"});
  expect_bad("bad.safetensors", std::string("\x10\x00\x00", 3),
             [](const std::string& p) { return io::read_safetensors(p); }, {"truncated"});
  // Header length past the end of the file, and an absurd one.
  std::string big(8, '\xff');
  expect_bad("bad.safetensors", big + "{}",
             [](const std::string& p) { return io::read_safetensors(p); },
             {"header length 18446744073709551615 exceeds"});
  const std::string whole =
      safetensors_bytes("{" + f32_entry("w", "[2]", 0, 8) + "}", std::string(8, '\0'));
  expect_bad("bad.safetensors", whole.substr(0, whole.size() - 3),
             [](const std::string& p) { return io::read_safetensors(p); },
             {"outside the 5 data bytes"});
}

TEST_F(BadFiles, SafetensorsHeaderIsNotWhatTheFormatSays) {
  safetensors("not json", "", {"not valid JSON"});
  safetensors("[1,2]", "", {"not a JSON object"});
  safetensors("{\"w\": 3}", "", {"tensor \"w\" is number, not an object"});
  safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", "", {"lacks \"data_offsets\""});
  safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}",
              std::string(4, '\0'), {"unknown field \"x\""});
  safetensors("{" + f32_entry("w", "[1]", 0, 4, "F128") + "}", std::string(4, '\0'),
              {"unsupported dtype \"F128\""});
  safetensors("{" + f32_entry("w", "[1]", 0, 4, "BOOL") + "}", std::string(4, '\0'),
              {"unsupported dtype \"BOOL\""});
  safetensors("{\"__metadata__\":{\"a\":1}}", "", {"__metadata__ \"a\" is 1, not a string"});
  safetensors("{\"__metadata__\":[]}", "", {"__metadata__ is array"});
  safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[[[[[1]]]]],\"data_offsets\":[0,4]}}",
              std::string(4, '\0'), {"nests deeper"});
  // Invalid UTF-8 inside a name (the JSON parser rejects it).
  safetensors("{\"w\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
              std::string(4, '\0'), {"not valid JSON"});
}

TEST_F(BadFiles, SafetensorsLyingSizesOffsetsAndDTypes) {
  const std::string data(16, '\0');
  // Shape and offsets disagree (a dtype that lies about its size, too).
  safetensors("{" + f32_entry("w", "[3]", 0, 8) + "}", data, {"needs 12 bytes", "give 8"});
  safetensors("{" + f32_entry("w", "[2]", 0, 8, "F64") + "}", data, {"needs 16 bytes", "give 8"});
  // Out of the file, reversed, negative, fractional.
  safetensors("{" + f32_entry("w", "[4]", 8, 24) + "}", data,
              {"[8, 24]", "outside the 16 data bytes"});
  safetensors("{" + f32_entry("w", "[0]", 9, 8) + "}", data, {"outside"});
  safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", data,
              {"data_offsets[0] is -4"});
  safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", data,
              {"shape[0] is 1.5"});
  safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", data,
              {"shape[0] is -1"});
  // Absurd dimensions: no allocation, whatever the product.
  safetensors("{" + f32_entry("w", "[4611686018427387904,4611686018427387904]", 0, 16) + "}", data,
              {"more bytes than 64 bits can count"});
  safetensors("{" + f32_entry("w", "[18446744073709551615]", 0, 16) + "}", data, {"absurd size"});
  safetensors(
      "{" +
          f32_entry("w", "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]", 0,
                    4) +
          "}",
      data, {"at most 32 sizes"});
  // Overlapping ranges; duplicate names.
  safetensors("{" + f32_entry("a", "[2]", 0, 8) + "," + f32_entry("b", "[2]", 4, 12) + "}", data,
              {"\"a\" [0, 8)", "\"b\" [4, 12)", "overlap"});
  safetensors("{" + f32_entry("a", "[2]", 0, 8) + "," + f32_entry("a", "[2]", 8, 16) + "}", data,
              {"duplicate name \"a\""});
}

TEST_F(BadFiles, Npy) {
  auto npy_file = [](int major, int minor, const std::string& dict, const std::string& data) {
    std::string out =
        std::string("\x93NUMPY", 6) + static_cast<char>(major) + static_cast<char>(minor);
    const std::size_t n = dict.size();
    for (int i = 0; i < (major == 1 ? 2 : 4); ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
    return out + dict + data;
  };
  const std::string four(4, '\0');
  const std::string ok_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n";
  npy("", {"truncated"});
  npy("\x93NUMPY", {"truncated"});
  npy("PK\x03\x04 not numpy at all", {"bad magic"});
  npy(npy_file(4, 0, ok_dict, four), {"unsupported version 4.0"});
  npy(npy_file(1, 1, ok_dict, four), {"unsupported version 1.1"});
  npy(npy_file(1, 0, ok_dict, four).substr(0, 30), {"header length", "exceeds"});
  npy(npy_file(1, 0, ok_dict, std::string(2, '\0')), {"needs 4 bytes", "has 2"});
  npy(npy_file(1, 0, ok_dict, four + four), {"needs 4 bytes", "has 8"});
  npy(npy_file(1, 0, "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", four),
      {"big-endian"});
  npy(npy_file(1, 0, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", four),
      {"unsupported dtype '<c8'"});
  npy(npy_file(1, 0, "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", four),
      {"Fortran"});
  npy(npy_file(1, 0, "{'descr': '<f4', 'fortran_order': False}", four), {"lacks 'shape'"});
  npy(npy_file(1, 0, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}",
               four),
      {"duplicate key 'descr'"});
  npy(npy_file(1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", four),
      {"unknown key 'x'"});
  npy(npy_file(1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (1), }", four), {"(n,)"});
  npy(npy_file(1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", four),
      {"expected a size"});
  npy(npy_file(1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
               four),
      {"absurd size"});
  npy(npy_file(1, 0,
               "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, "
               "4611686018427387904), }",
               four),
      {"more bytes than 64 bits can count"});
  npy(npy_file(1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } garbage", four),
      {"unexpected bytes"});
}

TEST_F(BadFiles, TextVectors) {
  text("", {"no vectors"});
  text("2 3\na 1 2 3\n", {"truncated", "says 2 words", "has 1"});
  text("1 2\na 1 2\nb 3 4\n", {"line 3", "more lines than the header's 1"});
  text("2 3\na 1 2 3\nb 1 2\n", {"line 3", "2 values, expected 3"});
  text("2 3\na 1 2 3\nb 1 2 3 4\n", {"line 3", "more than 3 values"});
  text("1 2\na 1 x\n", {"line 2", "value 2 \"x\" is not a number"});
  text("1 2\na 1 1e99\n", {"out of float32 range"});
  text("2 2\na 1 2\na 3 4\n", {"line 3", "duplicate word \"a\" (first at row 0)"});
  text("1 2\n\xc3\x28 1 2\n", {"line 2", "not valid UTF-8"});
  text("1 2\n\xed\xa0\x80 1 2\n", {"not valid UTF-8"});  // a UTF-16 surrogate
  text("1 0\n", {"header dim 0"});
  text("99999999999 300\na 1\n", {"cannot fit"});
  text("1 99999999\na 1\n", {"header dim 99999999 is not in"});
  text("a\nb 1\n", {"line 1", "has no values"});
}

TEST_F(BadFiles, Word2VecBinary) {
  const float v[2] = {1, 2};
  const std::string row(reinterpret_cast<const char*>(v), 8);
  binary("", {"no \"<count> <dim>\" header"});
  binary("x y\n", {"is not \"<count> <dim>\""});
  binary("1 2 3\n", {"is not \"<count> <dim>\""});
  binary("1 0\n", {"header dim 0"});
  binary("1000000 300\nab " + row, {"cannot fit"});
  binary("2 2\nab " + row + "\ncd " + row.substr(0, 5),
         {"truncated in the vector of word 2 \"cd\""});
  binary("2 2\nab " + row + "\ncdefghijklmn", {"truncated in word 2"});
  binary("1 2\nab " + row + "\nextra", {"5 bytes after the header's 1 words"});
  binary("2 2\nab " + row + "\nab " + row, {"duplicate word \"ab\""});
  binary("1 2\n\xff\xfe " + row, {"not valid UTF-8"});
  binary("1 2\n " + row + "\n", {"empty word"});
}

TEST_F(BadFiles, LoadTableNamesTheFileAndNeverWritesOnFailure) {
  // Through the generic loader too.
  expect_bad("t.safetensors",
             safetensors_bytes("{" + f32_entry("w", "[3]", 0, 8) + "}", std::string(8, '\0')),
             [](const std::string& p) { return io::load_table(p); }, {"needs 12 bytes"});
  expect_bad("t.vec", "2 2\na 1 2\n", [](const std::string& p) { return io::load_table(p); },
             {"truncated"});
  // vocab metadata that lies about the row count.
  const std::string f = dir_.file("v.safetensors");
  io::write_safetensors(f, {{"weight", Tensor::zeros({2, 2}, DType::kFloat32)}},
                        {{"emb.vocab", "[\"a\"]"}});
  expect_error<FormatError>([&] { (void)io::load_table(f); },
                            {"v.safetensors", "not an array of 2 words"});
  io::write_safetensors(f, {{"weight", Tensor::zeros({2, 2}, DType::kFloat32)}},
                        {{"emb.vocab", "[\"a\", \"a\"]"}});
  expect_error<FormatError>([&] { (void)io::load_table(f); }, {"duplicate word \"a\""});
  expect_error<IoError>([&] { (void)io::load_table(dir_.file("missing.npy")); },
                        {"cannot open", "missing.npy"});
}

TEST_F(BadFiles, EveryTruncationOfAGoodFileIsAFormatError) {
  // Every prefix of a valid file of each format fails cleanly (or, for text, reads fewer
  // complete lines without a header), never crashes.
  io::WordVectors wv;
  wv.words = {"a", "bb"};
  wv.vectors = Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2});
  io::write_safetensors(dir_.file("g.safetensors"),
                        {{"w", wv.vectors}, {"i", Tensor::zeros({3}, DType::kInt8)}});
  io::write_npy(dir_.file("g.npy"), wv.vectors);
  io::write_word2vec_binary(dir_.file("g.bin"), wv);
  io::write_text_vectors(dir_.file("g.vec"), wv);
  struct Case {
    const char* file;
    std::function<void(std::span<const std::byte>)> parse;
  };
  const Case cases[] = {
      {"g.safetensors", [](auto b) { (void)io::parse_safetensors(b, "g"); }},
      {"g.npy", [](auto b) { (void)io::parse_npy(b, "g"); }},
      {"g.bin", [](auto b) { (void)io::parse_word2vec_binary(b, "g"); }},
      {"g.vec", [](auto b) { (void)io::parse_text_vectors(b, "g"); }},
  };
  for (const Case& c : cases) {
    const std::string bytes = read_file(dir_.file(c.file));
    int failures = 0;
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      std::vector<std::byte> prefix(n);
      if (n != 0) std::memcpy(prefix.data(), bytes.data(), n);
      try {
        c.parse(prefix);
      } catch (const FormatError&) {
        ++failures;
      }
    }
    // Text files cut right after a complete line (or in trailing whitespace) may still parse.
    EXPECT_GE(failures, static_cast<int>(bytes.size()) - 4) << c.file;
    c.parse(std::span(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()));
  }
}

// What a reader made of a file: its tensors and metadata, or its FormatError's message.
template <typename Read>
std::string outcome(Read read) {
  auto bytes = [](const Tensor& t) {
    return std::string(dtype_name(t.dtype())) + shape_to_string(t.shape()) + ":" +
           std::string(static_cast<const char*>(t.raw_data()), t.nbytes());
  };
  try {
    const auto got = read();
    if constexpr (std::is_same_v<std::decay_t<decltype(got)>, Tensor>) {
      return bytes(got);
    } else {
      std::string out;
      for (const auto& [name, t] : got.tensors) out += name + "=" + bytes(t) + ";";
      for (const auto& [k, v] : got.metadata) out += k + ":" + v + ";";
      return out;
    }
  } catch (const FormatError& e) {
    return std::string("FormatError: ") + e.what();
  }
}

TEST_F(BadFiles, FileReadersAgreeWithTheByteParsersOnEveryCutOfALongHeader) {
  // The file readers parse the header from bytes read apart from the mapping (the first 4 KiB,
  // then the rest of the header): a header longer than that, cut anywhere, gives what the
  // parser of the same bytes in memory gives, mapped or copied.
  std::string words = "[";
  for (int i = 0; i < 700; ++i) words += (i == 0 ? "\"w" : ",\"w") + std::to_string(i) + "\"";
  words += "]";
  std::vector<float> values(1400);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 0.25f;
  io::write_safetensors(dir_.file("long.safetensors"),
                        {{"weight", Tensor::from_vector<float>(values, {700, 2})}},
                        {{"emb.vocab", words}});
  const std::string st = read_file(dir_.file("long.safetensors"));
  std::uint64_t st_header = 0;
  std::memcpy(&st_header, st.data(), 8);
  ASSERT_GT(st_header, 4096u);
  // A version 2 .npy whose header is padded past 4 KiB.
  const std::int32_t v[3] = {7, -8, 9};
  const std::string dict =
      "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }" + std::string(5000, ' ') + "\n";
  std::string npy = std::string("\x93NUMPY\x02\x00", 8);
  for (int i = 0; i < 4; ++i) npy += static_cast<char>((dict.size() >> (8 * i)) & 0xff);
  npy += dict + std::string(reinterpret_cast<const char*>(v), sizeof(v));
  const Tensor npy_want = Tensor::from_vector<std::int32_t>({7, -8, 9}, {3});
  ASSERT_TRUE(io::parse_npy(std::as_bytes(std::span(npy)), "n").equal(npy_want));
  // Every cut near the boundaries (the length, 4 KiB, the header's end, the file's end), a
  // sample elsewhere.
  auto cuts = [](std::size_t size, std::initializer_list<std::size_t> marks) {
    std::vector<std::size_t> out;
    for (std::size_t n = 0; n <= size; ++n) {
      const bool near = std::any_of(marks.begin(), marks.end(),
                                    [&](std::size_t m) { return n + 24 >= m && n <= m + 24; });
      if (near || n % 53 == 0) out.push_back(n);
    }
    return out;
  };
  int errors = 0;
  int cut_count = 0;
  for (std::size_t n : cuts(st.size(), {0, 4096, 8 + st_header, st.size()})) {
    const std::string path = dir_.file("cut.safetensors");
    ::unlink(path.c_str());  // (a fresh file: rewriting one in place forces its writeback)
    write_file(path, st.substr(0, n));
    const std::string want = outcome(
        [&] { return io::parse_safetensors(std::as_bytes(std::span(st.data(), n)), path); });
    errors += want.rfind("FormatError", 0) == 0;
    ++cut_count;
    for (io::Access access : {io::Access::kMap, io::Access::kCopy}) {
      ASSERT_EQ(outcome([&] { return io::read_safetensors(path, access); }), want) << n;
    }
  }
  for (std::size_t n : cuts(npy.size(), {0, 4096, 12 + dict.size(), npy.size()})) {
    const std::string path = dir_.file("cut.npy");
    ::unlink(path.c_str());
    write_file(path, npy.substr(0, n));
    const std::string want =
        outcome([&] { return io::parse_npy(std::as_bytes(std::span(npy.data(), n)), path); });
    errors += want.rfind("FormatError", 0) == 0;
    ++cut_count;
    for (io::Access access : {io::Access::kMap, io::Access::kCopy}) {
      ASSERT_EQ(outcome([&] { return io::read_npy(path, access); }), want) << n;
    }
  }
  EXPECT_EQ(errors, cut_count - 2);  // every cut but the whole files is bad
}

}  // namespace
}  // namespace emb
