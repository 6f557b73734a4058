// Writes the seed corpora of the fuzz targets (checked in under tests/fuzz/corpus/):
//   make_seeds <dir>  ->  <dir>/state_load_fuzz/*  <dir>/api_fuzz/*  and the table readers':
//   <dir>/safetensors_fuzz/*  <dir>/npy_fuzz/*  <dir>/text_vectors_fuzz/*
//   <dir>/word2vec_binary_fuzz/*
// state_load_fuzz: for every optimizer, float64 with sparse table gradients and float32 with
// dense ones, the state saved after 0 and after 2 steps, behind the two bytes the target reads
// first. api_fuzz: byte strings from a fixed pseudo-random sequence (every byte string decodes
// to a valid sequence of calls).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "emb/emb.h"
#include "optimizers.h"

namespace {

void write(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "make_seeds: cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

// Small valid files of every table format, written by emb's own writers (plus two variants
// other tools write: fastText's trailing spaces and CRLF, word2vec binary without newlines).
void write_table_seeds(const std::filesystem::path& root) {
  namespace io = emb::io;
  for (const char* d :
       {"safetensors_fuzz", "npy_fuzz", "text_vectors_fuzz", "word2vec_binary_fuzz"}) {
    std::filesystem::create_directories(root / d);
  }
  const emb::Tensor w =
      emb::Tensor::from_vector<float>({0.5f, -1.25f, 3.0f, 0.0f, 1e-3f, 7.0f}, {2, 3});
  io::write_safetensors(root / "safetensors_fuzz" / "f32_2x3", {{"weight", w}}, {{"format", "pt"}});
  io::write_safetensors(root / "safetensors_fuzz" / "mixed",
                        {{"a", emb::Tensor::full({2}, 1.0, emb::DType::kFloat64)},
                         {"b", w.to(emb::DType::kBFloat16)},
                         {"c", emb::Tensor::from_vector<std::int8_t>({1, -2, 3}, {3})},
                         {"d", emb::Tensor::zeros({0}, emb::DType::kUInt8)}});
  const emb::QuantizedTable q = emb::quantize_rowwise(w, emb::QuantType::kInt4);
  io::write_safetensors(root / "safetensors_fuzz" / "int4_table", {{"weight", q.data}},
                        {emb::quantized_metadata("weight", q)});
  io::write_npy(root / "npy_fuzz" / "f32_2x3", w);
  io::write_npy(root / "npy_fuzz" / "i8_scalar", emb::Tensor::scalar<std::int8_t>(5));
  io::write_npy(root / "npy_fuzz" / "f16_4", w.reshape({6}).to(emb::DType::kFloat16));
  io::WordVectors wv;
  wv.words = {"the", "k\xc3\xb6nig"};
  wv.vectors = w;
  io::write_text_vectors(root / "text_vectors_fuzz" / "word2vec", wv);
  io::write_text_vectors(root / "text_vectors_fuzz" / "glove", wv, io::TextHeader::kNone);
  write(root / "text_vectors_fuzz" / "fasttext_crlf",
        "2 3\r\nhello 1 2 3 \r\nworld -1 0.5 1e-3 \r\n");
  io::write_word2vec_binary(root / "word2vec_binary_fuzz" / "two_words", wv);
  const float v[3] = {1, 2, 3};
  write(root / "word2vec_binary_fuzz" / "no_newlines",
        "1 3\nword " + std::string(reinterpret_cast<const char*>(v), sizeof(v)));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds <corpus dir>\n");
    return 2;
  }
  const std::filesystem::path root = argv[1];
  const auto state_dir = root / "state_load_fuzz";
  const auto api_dir = root / "api_fuzz";
  std::filesystem::create_directories(state_dir);
  std::filesystem::create_directories(api_dir);

  for (int kind = 0; kind < emb::fuzz::kOptimizerKinds; ++kind) {
    for (int variant = 0; variant < 2; ++variant) {
      const bool sparse = variant == 0;
      const emb::DType dtype = sparse ? emb::DType::kFloat64 : emb::DType::kFloat32;
      for (int steps : {0, 2}) {
        emb::Parameter table = emb::fuzz::fuzz_table(dtype);
        emb::Parameter bias = emb::fuzz::fuzz_bias(dtype);
        std::vector<emb::Parameter*> ps{&table};
        if (kind != 6) ps.push_back(&bias);  // SparseAdam takes sparse gradients only
        auto opt = emb::fuzz::make_optimizer(kind, ps);
        // Adam and AdamW take dense gradients only, SparseAdam sparse ones only.
        const bool sparse_grads = (sparse && kind != 4 && kind != 5) || kind == 6;
        for (int s = 0; s < steps; ++s) {
          emb::fuzz::fuzz_grads(table, bias, s, sparse_grads);
          opt->step();
        }
        std::ostringstream state;
        opt->save(state);
        std::string bytes;
        bytes += static_cast<char>(kind);
        bytes += static_cast<char>((dtype == emb::DType::kFloat32 ? 1 : 0) | (sparse ? 2 : 0));
        write(state_dir / ("k" + std::to_string(kind) + (sparse ? "_sparse64_" : "_dense32_") +
                           std::to_string(steps)),
              bytes + state.str());
      }
    }
  }

  write_table_seeds(root);

  std::uint64_t x = 0x9e3779b97f4a7c15ULL;
  for (int i = 0; i < 24; ++i) {
    std::string bytes;
    const int length = 64 + 40 * i;
    for (int k = 0; k < length; ++k) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      bytes += static_cast<char>(x & 0xff);
    }
    write(api_dir / ("random_" + std::to_string(i)), bytes);
  }
  return 0;
}
