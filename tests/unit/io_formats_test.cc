// Reading and writing every table format: exact round trips, memory-mapped views, vocabularies.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "emb/embedding.h"
#include "emb/embedding_bag.h"
#include "emb/io/npy.h"
#include "emb/io/safetensors.h"
#include "emb/io/table.h"
#include "emb/io/word_vectors.h"
#include "emb/optim/sgd.h"
#include "expect_error.h"
#include "io_test_util.h"

namespace emb {
namespace {

using emb::testing::expect_error;
using emb::testing::read_file;
using emb::testing::safetensors_bytes;
using emb::testing::TempDir;
using emb::testing::write_file;
using io::Access;

// A tensor of the dtype with distinct, awkward values (negative zero, subnormals for floats).
Tensor sample(DType dtype, const Shape& shape, int seed) {
  Tensor t = Tensor::empty(shape, dtype);
  auto* b = static_cast<unsigned char*>(t.raw_data());
  std::uint32_t x = 0x9e3779b9u * static_cast<std::uint32_t>(seed + 1);
  for (std::size_t i = 0; i < t.nbytes(); ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b[i] = static_cast<unsigned char>(x);
  }
  return t;
}

io::LoadTableOptions mapped_options() {
  io::LoadTableOptions o;
  o.access = Access::kMap;
  return o;
}

io::LoadTableOptions tensor_options(const std::string& name) {
  io::LoadTableOptions o;
  o.tensor = name;
  return o;
}

const DType kAllDTypes[] = {DType::kFloat64, DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                            DType::kInt64,   DType::kInt32,   DType::kInt8,    DType::kUInt8};

TEST(Safetensors, RoundTripsEveryDTypeBitwiseWithMetadata) {
  TempDir dir;
  std::vector<std::pair<std::string, Tensor>> in;
  int seed = 0;
  for (DType dt : kAllDTypes) {
    in.emplace_back(std::string("t_") + std::string(dtype_name(dt)), sample(dt, {3, 5}, seed++));
  }
  in.emplace_back("scalar", sample(DType::kFloat32, {}, 9));
  in.emplace_back("empty", Tensor::zeros({0, 4}, DType::kFloat32));
  in.emplace_back("odd", sample(DType::kUInt8, {7}, 10));  // makes later offsets odd if misordered
  const std::string path = dir.file("t.safetensors");
  io::write_safetensors(path, in, {{"format", "pt"}, {"note", "héllo"}});
  for (Access access : {Access::kCopy, Access::kMap}) {
    io::TensorFile f = io::read_safetensors(path, access);
    ASSERT_EQ(f.tensors.size(), in.size());
    for (const auto& [name, t] : in) {
      EXPECT_TRUE(f.at(name).equal(t)) << name;
      EXPECT_EQ(f.at(name).is_read_only(), access == Access::kMap) << name;
    }
    EXPECT_EQ(f.metadata.at("format"), "pt");
    EXPECT_EQ(f.metadata.at("note"), "héllo");
  }
  // The header: 8-byte little-endian length, JSON, data starting at a multiple of 8.
  const std::string bytes = read_file(path);
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(bytes[8], '{');
  EXPECT_EQ((8 + n) % 8, 0u);
  EXPECT_NE(bytes.find("\"dtype\":\"BF16\""), std::string::npos);
  expect_error<ValueError>([&] { (void)io::read_safetensors(path).at("nope"); },
                           {"no tensor named \"nope\"", "t_float32"});
}

TEST(Safetensors, ReadsAHandWrittenFileWithPaddingAndNoMetadata) {
  TempDir dir;
  const float v[3] = {1.5f, -2.0f, 3.25f};
  std::string data(reinterpret_cast<const char*>(v), sizeof(v));
  const std::string header = R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})"
                             "    ";
  write_file(dir.file("a.safetensors"), safetensors_bytes(header, data));
  io::TensorFile f = io::read_safetensors(dir.file("a.safetensors"));
  ASSERT_EQ(f.tensors.size(), 1u);
  EXPECT_TRUE(f.at("w").equal(Tensor::from_vector<float>({1.5f, -2.0f, 3.25f}, {3})));
  EXPECT_TRUE(f.metadata.empty());
}

TEST(Safetensors, WriterRejectsBadInputAndLeavesTheOldFile) {
  TempDir dir;
  const std::string path = dir.file("t.safetensors");
  write_file(path, "old");
  const Tensor a = Tensor::zeros({2}, DType::kFloat32);
  expect_error<ValueError>(
      [&] {
        io::write_safetensors(path, {{"a", a}, {"a", a}});
      },
      "duplicate tensor name \"a\"");
  expect_error<ValueError>([&] { io::write_safetensors(path, {{"__metadata__", a}}); }, "reserved");
  expect_error<ValueError>([&] { io::write_safetensors(path, {{"b", Tensor()}}); }, "undefined");
  expect_error<ValueError>([&] { io::write_safetensors(path, {{"\xff", a}}); }, "UTF-8");
  EXPECT_EQ(read_file(path), "old");
  expect_error<IoError>(
      [&] {
        io::write_safetensors(dir.file("no/such/dir/x.safetensors"), {{"a", a}});
      },
      "no/such/dir/x.safetensors");
}

TEST(MappedTables, ViewsAreReadOnlyOutliveTheFileObjectAndServeLookups) {
  TempDir dir;
  const Tensor w = sample(DType::kFloat32, {100, 8}, 3);
  for (std::int64_t i = 0; i < w.numel(); ++i) w.set_double(i, std::sin(static_cast<double>(i)));
  const std::string path = dir.file("w.safetensors");
  io::write_safetensors(path, {{"weight", w}});
  Tensor mapped;
  {
    io::TensorFile f = io::read_safetensors(path, Access::kMap);
    mapped = f.at("weight");
  }
  ::unlink(path.c_str());  // the mapping (held by the tensor) keeps the bytes
  EXPECT_TRUE(mapped.equal(w));
  EXPECT_TRUE(mapped.is_read_only());
  EXPECT_TRUE(mapped.owns_memory());
  // Lookups and bags run on the mapping.
  const Tensor ids = Tensor::from_vector<std::int64_t>({3, 99, 0}, {3});
  EXPECT_TRUE(embedding(ids, mapped).equal(embedding(ids, w)));
  const Tensor offsets = Tensor::from_vector<std::int64_t>({0, 1}, {2});
  EXPECT_TRUE(embedding_bag(ids, mapped, offsets).equal(embedding_bag(ids, w, offsets)));
  // Writes name the file.
  expect_error<ValueError>([&] { mapped.fill_(0); },
                           {"Tensor::fill_", "read-only", "w.safetensors"});
  expect_error<ValueError>([&] { mapped.set_double(0, 1); }, "read-only");
  expect_error<ValueError>([&] { mapped.copy_(w); }, "read-only");
  expect_error<ValueError>([&] { embedding_renorm_(mapped, ids, 0.5, 2.0); },
                           {"embedding_renorm_", "w.safetensors"});
  expect_error<ValueError>([&] { embedding(ids, mapped, EmbeddingFuncOptions().max_norm(0.5)); },
                           "read-only");
  expect_error<ValueError>([&] { mapped.select(2).fill_(1); }, "read-only");
  EXPECT_TRUE(mapped.equal(w));  // nothing written
  // A module over the mapping: lookups work, an optimizer step is refused before any change.
  Embedding m = Embedding::from_pretrained(mapped, EmbeddingFromPretrainedOptions().freeze(false));
  m.backward(ids, Tensor::full({3, 8}, 1.0, DType::kFloat32));
  optim::SGD opt({&m.parameter()}, optim::SGDOptions(0.1));
  expect_error<ValueError>([&] { opt.step(); }, {"SGD::step", "read-only", "w.safetensors"});
  EXPECT_TRUE(mapped.equal(w));
  // Load into memory for training: clone() is an owning, writable copy.
  const Tensor loaded = mapped.clone();
  EXPECT_FALSE(loaded.is_read_only());
  loaded.fill_(2);
  EXPECT_TRUE(mapped.equal(w));
}

TEST(MappedTables, AMisalignedTensorIsCopiedNotViewed) {
  TempDir dir;
  // "b" (one byte) first puts "f" at data offset 1: not aligned for float32.
  const float v[2] = {1.25f, -7.5f};
  std::string data = "\x05" + std::string(reinterpret_cast<const char*>(v), sizeof(v));
  std::string header =
      R"({"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"f":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  write_file(dir.file("m.safetensors"), safetensors_bytes(header, data));
  io::TensorFile f = io::read_safetensors(dir.file("m.safetensors"), Access::kMap);
  EXPECT_TRUE(f.at("b").is_read_only());   // viewed
  EXPECT_FALSE(f.at("f").is_read_only());  // copied
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(f.at("f").raw_data()) % alignof(float), 0u);
  EXPECT_TRUE(f.at("f").equal(Tensor::from_vector<float>({1.25f, -7.5f}, {2})));
  EXPECT_EQ(f.at("b").at<std::uint8_t>(0), 5);
}

TEST(MappedTables, ASparseTableLargerThanMemoryOpensAndServesLookups) {
  // 16 GiB of float32 rows as a sparse file: only the header and two rows hold bytes.
  TempDir dir;
  const std::int64_t rows = 1 << 22;
  const std::int64_t dim = 1024;  // 4 KiB rows: 16 GiB
  std::string header = R"({"weight":{"dtype":"F32","shape":[)" + std::to_string(rows) + "," +
                       std::to_string(dim) + R"(],"data_offsets":[0,)" +
                       std::to_string(rows * dim * 4) + "]}}";
  header.append((8 - header.size() % 8) % 8, ' ');
  const std::string path = dir.file("big.safetensors");
  write_file(path, safetensors_bytes(header, ""));
  const int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  const off_t data_start = static_cast<off_t>(8 + header.size());
  ASSERT_EQ(::ftruncate(fd, data_start + rows * dim * 4), 0);
  std::vector<float> row(dim);
  for (std::int64_t d = 0; d < dim; ++d)
    row[static_cast<std::size_t>(d)] = static_cast<float>(d) * 0.5f;
  const std::int64_t far = rows - 3;
  ASSERT_EQ(::pwrite(fd, row.data(), dim * 4, data_start + far * dim * 4), dim * 4);
  ::close(fd);
  io::Table t = io::load_table(path, mapped_options());
  EXPECT_EQ(t.weight.shape(), (Shape{rows, dim}));
  EXPECT_TRUE(t.weight.is_read_only());
  const Tensor out = embedding(Tensor::from_vector<std::int64_t>({far, 5}, {2}), t.weight);
  for (std::int64_t d = 0; d < dim; ++d) {
    ASSERT_EQ(out.at<float>(0, d), row[static_cast<std::size_t>(d)]);
    ASSERT_EQ(out.at<float>(1, d), 0.0f);
  }
}

// The VmFlags of the mapping holding address p (/proc/self/smaps), "" when none holds it.
std::string vm_flags_at(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    unsigned long long lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-' && line.find(':') > line.find(' ')) {
      inside = lo <= a && a < hi;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line.substr(8) + " ";
    }
  }
  return "";
}

TEST(MappedTables, RandomAccessAdvisesTheWeightsMapping) {
  TempDir dir;
  const Tensor w = sample(DType::kFloat32, {4096, 4}, 5);  // 64 KiB
  const std::string path = dir.file("w.safetensors");
  io::write_safetensors(path, {{"weight", w}});
  io::LoadTableOptions o = mapped_options();
  const io::Table plain = io::load_table(path, o);
  o.random_access = true;
  const io::Table random = io::load_table(path, o);
  o.access = Access::kCopy;
  const io::Table copied = io::load_table(path, o);
  const std::string plain_flags = vm_flags_at(plain.weight.raw_data());
  const std::string random_flags = vm_flags_at(random.weight.raw_data());
  ASSERT_NE(plain_flags, "");
  ASSERT_NE(random_flags, "");
  EXPECT_EQ(plain_flags.find(" rr "), std::string::npos) << plain_flags;
  EXPECT_NE(random_flags.find(" rr "), std::string::npos) << random_flags;
  EXPECT_FALSE(copied.weight.is_read_only());  // a copy: nothing to advise
  const Tensor ids = Tensor::from_vector<std::int64_t>({4095, 0, 77}, {3});
  EXPECT_TRUE(embedding(ids, random.weight).equal(embedding(ids, w)));
  EXPECT_TRUE(random.weight.equal(w) && plain.weight.equal(w) && copied.weight.equal(w));
}

TEST(Npy, RoundTripsEveryNumPyDTypeAndShape) {
  TempDir dir;
  int seed = 0;
  for (DType dt : kAllDTypes) {
    if (dt == DType::kBFloat16) continue;
    for (const Shape& shape : {Shape{}, Shape{5}, Shape{3, 4}, Shape{2, 0, 3}, Shape{2, 3, 2}}) {
      const Tensor t = sample(dt, shape, seed++);
      const std::string path = dir.file("a.npy");
      io::write_npy(path, t);
      const std::string bytes = read_file(path);
      EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
      std::uint16_t hl = 0;
      std::memcpy(&hl, bytes.data() + 8, 2);
      EXPECT_EQ((10 + hl) % 64, 0);
      EXPECT_EQ(bytes[9 + hl], '\n');
      for (Access access : {Access::kCopy, Access::kMap}) {
        EXPECT_TRUE(io::read_npy(path, access).equal(t))
            << dtype_name(dt) << shape_to_string(shape);
      }
    }
  }
  expect_error<ValueError>(
      [&] { io::write_npy(dir.file("b.npy"), Tensor::zeros({2}, DType::kBFloat16)); }, "bfloat16");
}

TEST(Npy, ReadsVersions2And3AndTheHeaderVariantsNumPyWrites) {
  TempDir dir;
  const std::int32_t v[3] = {7, -8, 9};
  const std::string data(reinterpret_cast<const char*>(v), sizeof(v));
  auto file = [&](int major, const std::string& dict) {
    std::string out = std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0';
    const std::size_t n = dict.size();
    for (int i = 0; i < (major == 1 ? 2 : 4); ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
    return out + dict + data;
  };
  const Tensor want = Tensor::from_vector<std::int32_t>({7, -8, 9}, {3});
  write_file(dir.file("v2.npy"),
             file(2, "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }\n"));
  EXPECT_TRUE(io::read_npy(dir.file("v2.npy")).equal(want));
  write_file(dir.file("v3.npy"),
             file(3, "{\"shape\": (3,), \"descr\": \"<i4\", \"fortran_order\": False}   \n"));
  EXPECT_TRUE(io::read_npy(dir.file("v3.npy")).equal(want));
  write_file(dir.file("l.npy"),
             file(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (1L, 3L), }\n"));
  EXPECT_TRUE(io::read_npy(dir.file("l.npy")).equal(want.reshape({1, 3})));
}

TEST(WordVectors, TextWithAndWithoutHeaderAndBinaryRoundTripExactly) {
  TempDir dir;
  io::WordVectors wv;
  wv.words = {"the", "königin", "a_b", "x"};
  wv.vectors = Tensor::from_vector<float>(
      {0.1f, -2.5e-7f, 3.0f, 1e30f, -0.0f, 7.0f, 0.3333333f, 5e-45f, 1.0f, 2.0f, 3.0f, 4.0f},
      {4, 3});
  for (io::TextHeader h : {io::TextHeader::kCount, io::TextHeader::kNone}) {
    io::write_text_vectors(dir.file("v.txt"), wv, h);
    const io::WordVectors back = io::read_text_vectors(dir.file("v.txt"));
    EXPECT_EQ(back.words, wv.words);
    EXPECT_TRUE(back.vectors.equal(wv.vectors));
    EXPECT_EQ(back.find("königin"), std::optional<std::int64_t>(1));
    EXPECT_EQ(back.find("queen"), std::nullopt);
  }
  EXPECT_EQ(read_file(dir.file("v.txt")).substr(0, 6), "the 0.");
  io::write_word2vec_binary(dir.file("v.bin"), wv);
  const std::string bin = read_file(dir.file("v.bin"));
  EXPECT_EQ(bin.substr(0, 8), "4 3\nthe ");
  const io::WordVectors back = io::read_word2vec_binary(dir.file("v.bin"));
  EXPECT_EQ(back.words, wv.words);
  EXPECT_TRUE(back.vectors.equal(wv.vectors));
}

TEST(WordVectors, ReadsWhatOtherToolsWrite) {
  TempDir dir;
  // fastText .vec: trailing space on each line; CRLF line ends; a final blank line.
  write_file(dir.file("ft.vec"), "2 3\r\nhello 1 2 3 \r\nworld -1 0.5 1e-3 \r\n\r\n");
  io::WordVectors a = io::read_text_vectors(dir.file("ft.vec"));
  EXPECT_EQ(a.words, (std::vector<std::string>{"hello", "world"}));
  EXPECT_TRUE(a.vectors.equal(Tensor::from_vector<float>({1, 2, 3, -1, 0.5f, 1e-3f}, {2, 3})));
  // GloVe: no header.
  write_file(dir.file("g.txt"), "the 0.5 0.25\n, -1 2\n");
  io::WordVectors g = io::read_text_vectors(dir.file("g.txt"));
  EXPECT_EQ(g.words, (std::vector<std::string>{"the", ","}));
  EXPECT_EQ(g.vectors.shape(), (Shape{2, 2}));
  // word2vec binary without the '\n' after each vector (some writers omit it).
  std::string bin = "2 2\n";
  const float v[4] = {1, 2, 3, 4};
  bin += "ab ";
  bin.append(reinterpret_cast<const char*>(v), 8);
  bin += "cd ";
  bin.append(reinterpret_cast<const char*>(v + 2), 8);
  write_file(dir.file("w.bin"), bin);
  io::WordVectors b = io::read_word2vec_binary(dir.file("w.bin"));
  EXPECT_EQ(b.words, (std::vector<std::string>{"ab", "cd"}));
  EXPECT_TRUE(b.vectors.equal(Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2})));
}

TEST(Tables, LoadTableDetectsEveryFormatAndFeedsFromPretrained) {
  TempDir dir;
  io::Table t;
  t.weight = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {3, 2});
  t.vocab = {"a", "b", "c"};
  const std::pair<const char*, io::Format> files[] = {
      {"t.safetensors", io::Format::kSafetensors},
      {"t.npy", io::Format::kNpy},
      {"t.bin", io::Format::kWord2VecBinary},
      {"t.vec", io::Format::kTextVectors},
      {"t.glove", io::Format::kGloVe},
  };
  for (const auto& [name, format] : files) {
    const std::string path = dir.file(name);
    io::save_table(path, t);
    EXPECT_EQ(io::detect_format(path), format) << name;
    const io::Table back = io::load_table(path);
    EXPECT_EQ(back.format, format);
    EXPECT_TRUE(back.weight.equal(t.weight)) << name;
    // .npy has no vocabulary; the others keep it (safetensors in its metadata).
    EXPECT_EQ(back.vocab, format == io::Format::kNpy ? std::vector<std::string>{} : t.vocab)
        << name;
    Embedding m = Embedding::from_pretrained(back.weight);
    EXPECT_TRUE(m(Tensor::from_vector<std::int64_t>({2}, {1}))
                    .equal(Tensor::from_vector<float>({5, 6}, {1, 2})));
  }
  // A safetensors file with several tensors: the weight by name.
  io::write_safetensors(dir.file("m.safetensors"),
                        {{"emb.weight", t.weight},
                         {"other", Tensor::zeros({2, 2}, DType::kFloat32)},
                         {"bias", Tensor::zeros({2}, DType::kFloat32)}});
  EXPECT_EQ(io::load_table(dir.file("m.safetensors")).name, "emb.weight");
  EXPECT_EQ(io::load_table(dir.file("m.safetensors"), tensor_options("other")).name, "other");
  io::write_safetensors(dir.file("n.safetensors"), {{"a", t.weight}, {"b", t.weight}});
  expect_error<ValueError>([&] { (void)io::load_table(dir.file("n.safetensors")); },
                           {"several 2-D tensors", "\"a\"", "\"b\""});
  EXPECT_EQ(io::parse_format("word2vec"), io::Format::kTextVectors);
  expect_error<ValueError>([&] { (void)io::parse_format("csv"); }, "unknown format \"csv\"");
  expect_error<ValueError>([&] { (void)io::format_from_extension("x.csv"); }, "unknown extension");
}

TEST(Tables, ReducedPrecisionTablesRoundTripAndLookUp) {
  TempDir dir;
  const Tensor w = Tensor::from_vector<float>({0.1f, -1.5f, 1e-5f, 3.0f, 65504.0f, -0.0f}, {3, 2});
  for (DType dt : {DType::kFloat16, DType::kBFloat16}) {
    const Tensor low = w.to(dt);
    io::write_safetensors(dir.file("h.safetensors"), {{"weight", low}});
    const io::Table t = io::load_table(dir.file("h.safetensors"), mapped_options());
    EXPECT_EQ(t.weight.dtype(), dt);
    EXPECT_TRUE(t.weight.equal(low));
    const Tensor ids = Tensor::from_vector<std::int64_t>({2, 0}, {2});
    EXPECT_TRUE(embedding(ids, t.weight).equal(embedding(ids, low)));
  }
}

}  // namespace
}  // namespace emb

namespace emb {
namespace {

TEST(Int8Tensors, ConvertPrintAndRefuseValuesOutOfRange) {
  const Tensor a = Tensor::from_vector<std::int8_t>({-128, 0, 127}, {3});
  EXPECT_EQ(a.to_string(), "tensor([-128,    0,  127], dtype=torch.int8)");
  const Tensor u = Tensor::from_vector<std::uint8_t>({0, 200, 255}, {3});
  EXPECT_EQ(u.to_string(), "tensor([  0, 200, 255], dtype=torch.uint8)");
  EXPECT_TRUE(u.to(DType::kFloat32).equal(Tensor::from_vector<float>({0, 200, 255}, {3})));
  EXPECT_EQ(element_size(DType::kInt8), 1u);
  EXPECT_EQ(dtype_name(DType::kUInt8), "uint8");
  emb::testing::expect_error<ValueError>([&] { a.set_double(0, 128); },
                                         "does not fit int8 (valid: -128 to 127)");
  emb::testing::expect_error<ValueError>([&] { u.set_double(0, -1); },
                                         "does not fit uint8 (valid: 0 to 255)");
  emb::testing::expect_error<ValueError>([&] { u.set_double(0, 256); },
                                         "does not fit uint8 (valid: 0 to 255)");
  u.set_double(0, 255);
  EXPECT_EQ(u.at<std::uint8_t>(0), 255);
  // int8 is not an index dtype.
  emb::testing::expect_error<ValueError>(
      [&] {
        (void)embedding(a, Tensor::zeros({3, 2}, DType::kFloat32));
      },
      "must be int32 or int64, got int8");
}

}  // namespace
}  // namespace emb

namespace emb {
namespace {

using emb::testing::expect_error;
using emb::testing::TempDir;
using emb::testing::write_file;

// Many words, with and without a count header: the duplicate check grows its table as the words
// come (no header) and still finds a duplicate among thousands; the readers' index maps every
// word to its row, and load_table keeps the vocabulary in order.
TEST(WordVectors, ManyWordsDuplicateFoundIndexComplete) {
  TempDir dir;
  constexpr int kWords = 5000;
  std::string body;
  for (int i = 0; i < kWords; ++i) body += "word" + std::to_string(i * 7919 % 100003) + " 1 2\n";
  for (const bool header : {false, true}) {
    SCOPED_TRACE(header ? "header" : "no header");
    const std::string path = dir.file(header ? "h.vec" : "n.glove");
    write_file(path, (header ? std::to_string(kWords) + " 2\n" : std::string()) + body);
    const io::WordVectors wv = io::read_text_vectors(path);
    ASSERT_EQ(wv.words.size(), static_cast<std::size_t>(kWords));
    ASSERT_EQ(wv.index.size(), static_cast<std::size_t>(kWords));
    for (int i = 0; i < kWords; ++i) {
      EXPECT_EQ(wv.index.at(wv.words[static_cast<std::size_t>(i)]), i);
    }
    const io::Table t = io::load_table(path);
    EXPECT_EQ(t.vocab, wv.words);
    // The last line repeats the word of row 1234.
    const std::string dup = "word" + std::to_string(1234 * 7919 % 100003);
    write_file(path, (header ? std::to_string(kWords + 1) + " 2\n" : std::string()) + body + dup +
                         " 3 4\n");
    const int line = kWords + 1 + (header ? 1 : 0);
    expect_error<FormatError>(
        [&] { (void)io::read_text_vectors(path); },
        {"line " + std::to_string(line), "duplicate word \"" + dup + "\"", "first at row 1234"});
    expect_error<FormatError>([&] { (void)io::load_table(path); },
                              {"duplicate word \"" + dup + "\"", "first at row 1234"});
  }
}

}  // namespace
}  // namespace emb

namespace {

// The first invalid byte of every kind of bad sequence, found where it starts; valid text of
// every length (ASCII, 2-, 3- and 4-byte forms, the largest code point) passes.
TEST(Utf8, FindsTheFirstInvalidSequence) {
  using emb::io::find_invalid_utf8;
  constexpr auto npos = std::string_view::npos;
  EXPECT_EQ(find_invalid_utf8(""), npos);
  EXPECT_EQ(find_invalid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf"), npos);
  EXPECT_EQ(find_invalid_utf8("ab\x80"), 2u);                   // a stray continuation byte
  EXPECT_EQ(find_invalid_utf8("a\xc3\x28"), 1u);                // a missing continuation byte
  EXPECT_EQ(find_invalid_utf8("ab\xe2\x82"), 2u);               // cut short at the end
  EXPECT_EQ(find_invalid_utf8("\xc0\xaf"), 0u);                 // overlong '/'
  EXPECT_EQ(find_invalid_utf8("x\xe0\x80\xaf"), 1u);            // overlong, 3 bytes
  EXPECT_EQ(find_invalid_utf8("xy\xed\xa0\x80"), 2u);           // a UTF-16 surrogate
  EXPECT_EQ(find_invalid_utf8("\xf4\x90\x80\x80"), 0u);         // past U+10FFFF
  EXPECT_EQ(find_invalid_utf8("ok \xf8\x88\x80\x80\x80"), 3u);  // a 5-byte lead
  EXPECT_EQ(find_invalid_utf8("\xc3\xa9\xff"), 2u);             // after a valid one
}

}  // namespace
