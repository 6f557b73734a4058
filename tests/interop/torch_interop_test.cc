// PyTorch interop for real: Debian's PyTorch 1.13 exports an nn.Embedding state (.npy through
// numpy, safetensors written by the script itself) and emb loads it bit-identically; emb writes
// tables that the script reads back and compares.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "emb/embedding.h"
#include "emb/embedding_bag.h"
#include "emb/io/npy.h"
#include "emb/io/safetensors.h"
#include "emb/io/table.h"
#include "io_test_util.h"

namespace emb {
namespace {

using emb::testing::read_file;
using emb::testing::TempDir;

std::string python() {
  const char* env = std::getenv("EMB_TORCH_PYTHON");
  return env ? env : "/usr/bin/python3";  // Debian's, with python3-torch and python3-numpy
}

void run_script(const std::string& mode, const std::string& dir) {
  const std::string cmd = python() + " " + EMB_INTEROP_SCRIPT + " " + mode + " " + dir;
  const int rc = std::system(cmd.c_str());
  ASSERT_EQ(rc, 0) << cmd;
}

std::string bytes_of(const Tensor& t) {
  return std::string(static_cast<const char*>(t.raw_data()), t.nbytes());
}

// Bit-identical: dtype, shape and every byte.
void expect_bytes(const Tensor& t, DType dtype, const Shape& shape, const std::string& want,
                  const std::string& what) {
  EXPECT_EQ(t.dtype(), dtype) << what;
  EXPECT_EQ(t.shape(), shape) << what;
  EXPECT_TRUE(bytes_of(t) == want) << what << ": bytes differ";
}

TEST(TorchInterop, EmbLoadsWhatPyTorchExportsBitIdentically) {
  TempDir dir;
  run_script("export", dir.path());
  const Shape shape{1000, 33};
  const std::string f32 = read_file(dir.file("expected_f32.bin"));
  ASSERT_EQ(f32.size(), 1000u * 33 * 4);
  for (io::Access access : {io::Access::kCopy, io::Access::kMap}) {
    expect_bytes(io::read_npy(dir.file("torch_f32.npy"), access), DType::kFloat32, shape, f32,
                 "npy f32");
    expect_bytes(io::read_npy(dir.file("torch_f64.npy"), access), DType::kFloat64, shape,
                 read_file(dir.file("expected_f64.bin")), "npy f64");
    expect_bytes(io::read_npy(dir.file("torch_f16.npy"), access), DType::kFloat16, shape,
                 read_file(dir.file("expected_f16.bin")), "npy f16");
    const io::TensorFile f = io::read_safetensors(dir.file("torch.safetensors"), access);
    expect_bytes(f.at("weight"), DType::kFloat32, shape, f32, "safetensors F32");
    expect_bytes(f.at("weight_bf16"), DType::kBFloat16, shape,
                 read_file(dir.file("expected_bf16.bin")), "safetensors BF16");
    expect_bytes(f.at("weight_f16"), DType::kFloat16, shape,
                 read_file(dir.file("expected_f16.bin")), "safetensors F16");
    EXPECT_TRUE(f.at("ids").equal(Tensor::from_vector<std::int64_t>({3, 999, 7, 0, 3}, {5})));
    EXPECT_TRUE(f.at("small").equal(
        Tensor::from_vector<std::int8_t>({-5, -4, -3, -2, -1, 0, 1, 2, 3, 4}, {10})));
    EXPECT_TRUE(f.at("bytes").equal(
        Tensor::from_vector<std::uint8_t>({0, 25, 50, 75, 100, 125, 150, 175, 200, 225}, {10})));
    EXPECT_EQ(f.metadata.at("source"), "torch.nn.Embedding");
    // from_pretrained on the loaded table gives torch's lookups and bags, bit for bit.
    const io::Table t =
        io::load_table(dir.file("torch.safetensors"), {.access = access, .tensor = ""});
    Embedding m =
        Embedding::from_pretrained(t.weight, EmbeddingFromPretrainedOptions().padding_idx(7));
    const Tensor ids = f.at("ids");
    expect_bytes(m(ids), DType::kFloat32, {5, 33}, read_file(dir.file("expected_lookup.bin")),
                 "lookup");
    const Tensor bag =
        embedding_bag(ids, t.weight, Tensor::from_vector<std::int64_t>({0, 2}, {2}),
                      EmbeddingBagFuncOptions().mode(EmbeddingBagMode::kSum).padding_idx(7));
    expect_bytes(bag, DType::kFloat32, {2, 33}, read_file(dir.file("expected_bag.bin")), "bag sum");
  }
}

TEST(TorchInterop, PyTorchReadsWhatEmbWritesBitIdentically) {
  TempDir dir;
  Generator g(77);
  Embedding m(EmbeddingOptions(300, 17), g);
  const Tensor w = m.weight();
  const Tensor ids = Tensor::from_vector<std::int64_t>({5, 0, 299, 5}, {4});
  io::write_safetensors(dir.file("emb.safetensors"),
                        {{"weight", w},
                         {"weight_bf16", w.to(DType::kBFloat16)},
                         {"weight_f16", w.to(DType::kFloat16)},
                         {"ids", ids}},
                        {{"writer", "emb"}});
  io::write_npy(dir.file("emb_f32.npy"), w);
  io::write_npy(dir.file("emb_f16.npy"), w.to(DType::kFloat16));
  emb::testing::write_file(dir.file("emb_expected_f32.bin"), bytes_of(w));
  emb::testing::write_file(dir.file("emb_expected_bf16.bin"), bytes_of(w.to(DType::kBFloat16)));
  emb::testing::write_file(dir.file("emb_expected_f16.bin"), bytes_of(w.to(DType::kFloat16)));
  emb::testing::write_file(dir.file("emb_expected_ids.bin"), bytes_of(ids));
  emb::testing::write_file(dir.file("emb_expected_lookup.bin"), bytes_of(m(ids)));
  run_script("import", dir.path());
}

}  // namespace
}  // namespace emb
