// Writes the seed corpora of the fuzz targets (checked in under tests/fuzz/corpus/):
//   make_seeds <dir>  ->  <dir>/state_load_fuzz/*  <dir>/api_fuzz/*
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
