// Unit tests of the safetensors reader and writer: round trips of every dtype with metadata,
// the atomic write, and files that must be refused before anything is allocated.
#include "emb/io/safetensors.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "emb/emb.h"
#include "expect_error.h"

namespace {

using emb::testing::expect_error;
namespace fs = std::filesystem;

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("emb_safetensors_test_" + name)).string();
}

// A file: 8-byte length, the header text, then `data` bytes.
std::string write_raw(const std::string& name, const std::string& header, std::size_t data,
                      std::uint64_t length_override = 0) {
  const std::string path = temp_path(name);
  std::ofstream out(path, std::ios::binary);
  const std::uint64_t len = length_override ? length_override : header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((len >> (8 * i)) & 0xff));
  out << header << std::string(data, '\0');
  return path;
}

TEST(Safetensors, RoundTripsEveryDtypeAndMetadata) {
  const std::string path = temp_path("roundtrip");
  std::vector<emb::io::NamedTensor> tensors;
  for (emb::DType d : {emb::DType::kFloat32, emb::DType::kFloat64, emb::DType::kFloat16,
                       emb::DType::kBFloat16, emb::DType::kInt32, emb::DType::kInt64}) {
    emb::Tensor t = emb::Tensor::empty({2, 3}, d);
    for (std::int64_t i = 0; i < 6; ++i) t.set_double(i, static_cast<double>(i) - 2.5);
    tensors.push_back({std::string(emb::dtype_name(d)), t});
  }
  tensors.push_back({"empty", emb::Tensor::empty({0, 4}, emb::DType::kFloat32)});
  tensors.push_back({"scalar", emb::Tensor::scalar<double>(7.25)});
  emb::io::save_safetensors(path, tensors, {{"a", "1"}, {"text", "x\ny \"q\""}});
  const emb::io::Safetensors f = emb::io::load_safetensors(path);
  ASSERT_EQ(f.tensors.size(), tensors.size());
  for (const auto& t : tensors) EXPECT_TRUE(f.tensor(t.name).equal(t.tensor)) << t.name;
  EXPECT_EQ(f.meta("text"), "x\ny \"q\"");
  EXPECT_EQ(f.meta("a"), "1");
  expect_error<emb::FormatError>([&] { (void)f.tensor("nope"); }, {"no tensor named \"nope\""});
  expect_error<emb::FormatError>([&] { (void)f.meta("nope"); }, {"nope"});
  // The data start 8-byte aligned, and no temporary file is left behind.
  std::ifstream in(path, std::ios::binary);
  std::uint64_t len = 0;
  in.read(reinterpret_cast<char*>(&len), 8);
  EXPECT_EQ(len % 8, 0u);
  for (const auto& e : fs::directory_iterator(fs::temp_directory_path())) {
    EXPECT_EQ(e.path().string().find(path + ".tmp"), std::string::npos) << e.path();
  }
  fs::remove(path);
}

TEST(Safetensors, WriteRefusesBadNamesAndKeepsTheOldFile) {
  const std::string path = temp_path("refuse");
  const emb::Tensor t = emb::Tensor::zeros({2}, emb::DType::kFloat32);
  emb::io::save_safetensors(path, {{"w", t}});
  const auto size = fs::file_size(path);
  expect_error<emb::ValueError>(
      [&] {
        emb::io::save_safetensors(path, {{"w", t}, {"w", t}});
      },
      {"\"w\" appears twice"});
  expect_error<emb::ValueError>(
      [&] {
        emb::io::save_safetensors(path, {{"__metadata__", t}});
      },
      {"reserved"});
  expect_error<emb::ValueError>(
      [&] {
        emb::io::save_safetensors(path, {{"u", emb::Tensor()}});
      },
      {"\"u\" is undefined"});
  expect_error<emb::IoError>(
      [&] {
        emb::io::save_safetensors(temp_path("no/such/dir/x"), {{"w", t}});
      },
      {"cannot"});
  EXPECT_EQ(fs::file_size(path), size);
  fs::remove(path);
}

TEST(Safetensors, RefusesBadFiles) {
  using emb::FormatError;
  const auto refuse = [](const std::string& path, const std::string& needle) {
    expect_error<FormatError>([&] { (void)emb::io::load_safetensors(path); }, {needle});
    fs::remove(path);
  };
  expect_error<emb::IoError>([] { (void)emb::io::load_safetensors(temp_path("missing")); },
                             {"cannot open"});
  {
    const std::string p = temp_path("short");
    std::ofstream(p) << "abc";
    refuse(p, "too short");
  }
  refuse(write_raw("huge", "{}", 0, std::uint64_t{1} << 62), "exceeds the file");
  refuse(write_raw("notjson", "{\"a\":", 0), "not a JSON object");
  refuse(write_raw("array", "[1,2]", 0), "not a JSON object");
  refuse(write_raw("dtype", R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", 1),
         "dtype \"U8\"");
  refuse(write_raw("shape", R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4),
         "shape[0] is -1");
  refuse(write_raw("fill", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4),
         "does not fill");
  refuse(write_raw("past", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4),
         "outside the 4 data bytes");
  refuse(
      write_raw("overflow",
                R"({"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8),
      "more bytes than 64 bits can count");
  refuse(write_raw("hole", R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
         "starts at data byte 4, expected 0");
  refuse(write_raw("overlap",
                   R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                   R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                   8),
         "overlap");
  refuse(write_raw("tail", R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 12),
         "cover 4 of the 12");
  refuse(write_raw("meta", R"({"__metadata__":{"k":1}})", 0), "not a string");
  refuse(write_raw("missing_key", R"({"w":{"dtype":"F32","shape":[1]}})", 4),
         "lacks \"data_offsets\"");
}

}  // namespace
