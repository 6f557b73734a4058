// Checkpoints: a safetensors file with tables, optimizer state and per-tensor CRC-32C.
#include "emb/io/checkpoint.h"

#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "emb/io/safetensors.h"
#include "io/file_io.h"

namespace emb::io {

namespace {

constexpr const char* kFormatKey = "emb.checkpoint";
constexpr const char* kFormatVersion = "1";
constexpr const char* kOptimizerKey = "emb.optimizer";
constexpr const char* kLrKey = "emb.optimizer.lr";
constexpr const char* kParamsKey = "emb.optimizer.params";
constexpr const char* kStepPrefix = "emb.optimizer.step.";
constexpr const char* kCrcPrefix = "emb.crc32c.";
constexpr const char* kOptimPrefix = "optim.";

bool starts_with(const std::string& s, std::string_view p) {
  return s.compare(0, p.size(), p) == 0;
}

std::string hex32(std::uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", v);
  return buf;
}

std::string exact_double(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);  // shortest round-trip form
  return std::string(buf, r.ptr);
}

std::uint32_t crc_of(const Tensor& t) {
  return detail::io::crc32c({static_cast<const std::byte*>(t.raw_data()), t.nbytes()});
}

template <typename T>
T parse_number(const std::string& text, const std::string& file, const std::string& key) {
  T v{};
  const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size()) {
    throw FormatError("load_checkpoint: " + file + ": metadata \"" + key + "\" = \"" + text +
                      "\" is not a number");
  }
  return v;
}

const std::string& meta_at(const std::map<std::string, std::string>& m, const std::string& key,
                           const std::string& file) {
  const auto it = m.find(key);
  if (it == m.end()) {
    throw FormatError("load_checkpoint: " + file + ": metadata lacks \"" + key + "\"");
  }
  return it->second;
}

bool is_legacy_optimizer_state(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[8] = {};
  in.read(magic, 8);
  return in.gcount() == 8 && std::memcmp(magic, "EMBOPTIM", 8) == 0;
}

}  // namespace

void save_checkpoint(const std::string& path, const std::map<std::string, Tensor>& tables,
                     const optim::Optimizer* optimizer,
                     const std::map<std::string, std::string>& metadata) {
  const char* op = "save_checkpoint";
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, std::string> meta;
  for (const auto& [k, v] : metadata) {
    if (starts_with(k, "emb.")) {
      throw ValueError(std::string(op) + ": metadata key \"" + k +
                       "\" uses the reserved prefix \"emb.\"");
    }
    meta[k] = v;
  }
  for (const auto& [name, t] : tables) {
    if (starts_with(name, kOptimPrefix)) {
      throw ValueError(std::string(op) + ": table name \"" + name +
                       "\" uses the reserved prefix \"optim.\"");
    }
    if (!t.defined()) throw ValueError(std::string(op) + ": table \"" + name + "\" is undefined");
    tensors.emplace_back(name, t);
  }
  if (optimizer != nullptr) {
    meta[kOptimizerKey] = optimizer->name();
    meta[kLrKey] = exact_double(optimizer->lr());
    const std::size_t n = optimizer->parameters().size();
    meta[kParamsKey] = std::to_string(n);
    for (std::size_t i = 0; i < n; ++i) {
      const optim::ParamState& s = optimizer->state(i);
      meta[kStepPrefix + std::to_string(i)] = std::to_string(s.step);
      for (const auto& [key, t] : s.tensors) {
        tensors.emplace_back(kOptimPrefix + std::to_string(i) + "." + key, t);
      }
    }
  }
  for (const auto& [name, t] : tensors) meta[kCrcPrefix + name] = hex32(crc_of(t));
  meta[kFormatKey] = kFormatVersion;
  write_safetensors(path, tensors, meta);  // atomic: temporary file, fsync, rename, fsync dir
}

Checkpoint load_checkpoint(const std::string& path, optim::Optimizer* optimizer) {
  const char* op = "load_checkpoint";
  if (is_legacy_optimizer_state(path)) {
    if (optimizer == nullptr) {
      throw ValueError(std::string(op) + ": " + path +
                       " holds only optimizer state (the older format): pass the optimizer");
    }
    optimizer->load(path);
    return {};
  }
  TensorFile f = read_safetensors(path, Access::kCopy);
  const std::string version = meta_at(f.metadata, kFormatKey, path);
  if (version != kFormatVersion) {
    throw FormatError(std::string(op) + ": " + path + ": unsupported checkpoint version \"" +
                      version + "\"");
  }
  // Every tensor has its checksum, and every checksum its tensor.
  std::size_t crc_count = 0;
  for (const auto& [k, v] : f.metadata) crc_count += starts_with(k, kCrcPrefix);
  if (crc_count != f.tensors.size()) {
    throw FormatError(std::string(op) + ": " + path + ": " + std::to_string(crc_count) +
                      " checksums for " + std::to_string(f.tensors.size()) + " tensors");
  }
  for (const auto& [name, t] : f.tensors) {
    const std::string& want = meta_at(f.metadata, kCrcPrefix + name, path);
    const std::string got = hex32(crc_of(t));
    if (want != got) {
      throw FormatError(std::string(op) + ": " + path + ": checksum mismatch in tensor \"" + name +
                        "\" (stored " + want + ", computed " + got + ")");
    }
  }
  Checkpoint out;
  std::vector<std::pair<std::string, Tensor>> optim_tensors;
  for (auto& [name, t] : f.tensors) {
    if (starts_with(name, kOptimPrefix)) {
      optim_tensors.emplace_back(name, t);
    } else {
      out.tables.emplace(name, t);
    }
  }
  for (const auto& [k, v] : f.metadata) {
    if (!starts_with(k, "emb.")) out.metadata.emplace(k, v);
  }
  const bool has_optimizer = f.metadata.count(kOptimizerKey) != 0;
  if (optimizer != nullptr) {
    if (!has_optimizer) {
      throw FormatError(std::string(op) + ": " + path +
                        ": the checkpoint holds no optimizer state");
    }
    const std::string& kind = f.metadata.at(kOptimizerKey);
    if (kind != optimizer->name()) {
      throw FormatError(std::string(op) + ": " + path + ": the state is of a " + kind +
                        " optimizer, not " + optimizer->name());
    }
    const double lr = parse_number<double>(meta_at(f.metadata, kLrKey, path), path, kLrKey);
    const auto n =
        parse_number<std::uint64_t>(meta_at(f.metadata, kParamsKey, path), path, kParamsKey);
    if (n != optimizer->parameters().size()) {
      throw FormatError(std::string(op) + ": " + path + ": the state has " + std::to_string(n) +
                        " parameters, the optimizer " +
                        std::to_string(optimizer->parameters().size()));
    }
    std::vector<optim::ParamState> states(n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::string key = kStepPrefix + std::to_string(i);
      states[i].step = parse_number<std::int64_t>(meta_at(f.metadata, key, path), path, key);
    }
    for (auto& [name, t] : optim_tensors) {
      // "optim.<i>.<key>"
      const std::string rest = name.substr(std::strlen(kOptimPrefix));
      const std::size_t dot = rest.find('.');
      std::uint64_t i = 0;
      const auto r =
          std::from_chars(rest.data(), rest.data() + (dot == std::string::npos ? 0 : dot), i);
      if (dot == std::string::npos || dot == 0 || r.ptr != rest.data() + dot || i >= n) {
        throw FormatError(std::string(op) + ": " + path + ": tensor \"" + name +
                          "\" names no parameter of the optimizer");
      }
      states[i].tensors.emplace(rest.substr(dot + 1), t);
    }
    try {
      optimizer->restore(lr, std::move(states));
    } catch (const FormatError& e) {
      throw FormatError(std::string(op) + ": " + path + ": " + e.what());
    }
  }
  return out;
}

}  // namespace emb::io
