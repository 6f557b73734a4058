// Sharded checkpoints: every rank writes its rows (and their optimizer state) to its own
// safetensors file, with a CRC-32C of every tensor; rank 0 then replaces manifest.json, which
// names the complete set. A crash before the manifest's rename leaves the previous checkpoint
// (its manifest and its files) untouched. Loading takes each rank's rows from whichever files
// hold them, so a checkpoint written on N ranks loads onto any M (docs/FORMATS.md).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "collection/collection_ops.h"
#include "dist/comm_impl.h"
#include "emb/dist/sharded_embedding_bag_collection.h"
#include "emb/io/safetensors.h"
#include "io/file_io.h"

namespace emb::dist {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kFormat = "emb.sharded_collection.v1";

std::string crc_hex(const Tensor& t) {
  const std::uint32_t crc = emb::detail::io::crc32c(
      {static_cast<const std::byte*>(t.raw_data()), t.nbytes()});
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", crc);
  return buf;
}

std::string shard_name(std::int64_t generation, int rank, int ranks) {
  return "shard-g" + std::to_string(generation) + "-r" + std::to_string(rank) + "-of-" +
         std::to_string(ranks) + ".safetensors";
}

json read_manifest(const std::string& dir, const char* op) {
  const std::string path = dir + "/manifest.json";
  std::ifstream in(path);
  if (!in) throw IoError(std::string(op) + ": cannot open " + path);
  try {
    json m = json::parse(in);
    if (!m.is_object() || m.value("format", "") != kFormat) {
      throw FormatError(std::string(op) + ": " + path + " is not an emb sharded manifest");
    }
    return m;
  } catch (const json::exception& e) {
    throw FormatError(std::string(op) + ": " + path + ": " + e.what());
  }
}

// Every rank's outcome: the failing rank rethrows its error, the others throw `as`.
template <typename Fn>
void agree_io(const Communicator& comm, const char* op, Fn&& fn) {
  std::exception_ptr error;
  try {
    fn();
  } catch (const Error&) {
    error = std::current_exception();
  } catch (const std::exception& e) {
    error = std::make_exception_ptr(IoError(std::string(op) + ": " + e.what()));
  }
  const int failed = comm.first_failed(!error);
  if (error) std::rethrow_exception(error);
  if (failed >= 0) {
    throw IoError(std::string(op) + ": rank " + std::to_string(failed) +
                  " failed (its own error says why); nothing changed");
  }
}

}  // namespace

void ShardedEmbeddingBagCollection::save(const std::string& dir) const {
  const char* op = "ShardedEmbeddingBagCollection::save";
  const int rank = comm_.rank();
  const int ranks = comm_.size();
  // The next generation: one more than the manifest's (rank 0 reads it; every rank learns it).
  std::int64_t generation = 1;
  agree_io(comm_, op, [&] {
    if (rank == 0) {
      fs::create_directories(dir);
      if (fs::exists(dir + "/manifest.json")) {
        generation = read_manifest(dir, op).at("generation").get<std::int64_t>() + 1;
      }
    }
  });
  {
    std::vector<std::byte> mine(sizeof generation);
    std::memcpy(mine.data(), &generation, sizeof generation);
    const auto all = emb::dist::detail::all_gather(comm_, mine);
    std::memcpy(&generation, all[0].data(), sizeof generation);
  }
  std::vector<std::int64_t> steps;
  for (std::size_t t = 0; t < configs_.size(); ++t) steps.push_back(step_count(t));

  // 1. Every rank its own file.
  const std::string file = shard_name(generation, rank, ranks);
  json held = json::object();
  agree_io(comm_, op, [&] {
    std::vector<std::pair<std::string, Tensor>> tensors;
    std::map<std::string, std::string> meta;
    for (std::size_t t = 0; t < configs_.size(); ++t) {
      if (end_[t] <= begin_[t]) continue;
      const std::string& name = configs_[t].name();
      tensors.emplace_back(name + ".weight", shards_[t]);
      for (const auto& [key, state] : states_[t].tensors) tensors.emplace_back(name + "." + key, state);
      held[name] = {begin_[t], end_[t]};
    }
    for (const auto& [name, t] : tensors) meta["emb.crc32c." + name] = crc_hex(t);
    emb::io::write_safetensors(dir + "/" + file, tensors, meta);
  });

  // 2. Rank 0 commits the set with the manifest.
  std::string held_text = held.dump();
  std::vector<std::byte> mine(held_text.size());
  std::memcpy(mine.data(), held_text.data(), held_text.size());
  const auto all_held = emb::dist::detail::all_gather(comm_, mine);
  agree_io(comm_, op, [&] {
    if (rank != 0) return;
    json m;
    m["format"] = kFormat;
    m["generation"] = generation;
    m["ranks"] = ranks;
    m["optimizer"] = fused_optimizer_name(optimizer_);
    m["tables"] = json::array();
    for (std::size_t t = 0; t < configs_.size(); ++t) {
      const EmbeddingBagConfig& c = configs_[t];
      m["tables"].push_back({{"name", c.name()},
                             {"rows", c.num_embeddings()},
                             {"dim", c.embedding_dim()},
                             {"dtype", std::string(dtype_name(c.dtype()))},
                             {"mode", mode_name(c.mode())},
                             {"step", steps[t]}});
    }
    m["shards"] = json::array();
    for (int r = 0; r < ranks; ++r) {
      const std::string text(reinterpret_cast<const char*>(all_held[r].data()), all_held[r].size());
      m["shards"].push_back({{"file", shard_name(generation, r, ranks)}, {"rows", json::parse(text)}});
    }
    emb::detail::io::AtomicWriter w(dir + "/manifest.json", op);
    w.write(m.dump(1));
    w.commit();
  });

  // 3. The previous generations' files are no longer named by the manifest.
  if (rank == 0) {
    const std::string keep = "shard-g" + std::to_string(generation) + "-";
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string n = entry.path().filename().string();
      if (n.rfind("shard-g", 0) == 0 && n.rfind(keep, 0) != 0) fs::remove(entry.path(), ec);
    }
  }
  comm_.barrier();
}

void ShardedEmbeddingBagCollection::load(const std::string& dir) {
  const char* op = "ShardedEmbeddingBagCollection::load";
  std::vector<Tensor> new_shards(configs_.size());
  std::vector<FusedTableState> new_states(configs_.size());
  agree_io(comm_, op, [&] {
    const json m = read_manifest(dir, op);
    try {
      if (m.at("optimizer").get<std::string>() != fused_optimizer_name(optimizer_)) {
        throw FormatError(std::string(op) + ": the checkpoint holds " +
                          m.at("optimizer").get<std::string>() + " state, this collection uses " +
                          fused_optimizer_name(optimizer_));
      }
      const json& tables = m.at("tables");
      if (tables.size() != configs_.size()) {
        throw FormatError(std::string(op) + ": the checkpoint has " +
                          std::to_string(tables.size()) + " tables, the collection " +
                          std::to_string(configs_.size()));
      }
      std::map<std::string, emb::io::TensorFile> files;  // read once each, when needed
      for (std::size_t t = 0; t < configs_.size(); ++t) {
        const EmbeddingBagConfig& c = configs_[t];
        const json& j = tables[t];
        if (j.at("name").get<std::string>() != c.name() ||
            j.at("rows").get<std::int64_t>() != c.num_embeddings() ||
            j.at("dim").get<std::int64_t>() != c.embedding_dim() ||
            j.at("dtype").get<std::string>() != dtype_name(c.dtype()) ||
            j.at("mode").get<std::string>() != mode_name(c.mode())) {
          throw FormatError(std::string(op) + ": table " + std::to_string(t) +
                            " of the checkpoint is " + j.dump() + ", the collection's is \"" +
                            c.name() + "\" [" + std::to_string(c.num_embeddings()) + ", " +
                            std::to_string(c.embedding_dim()) + "]");
        }
        const std::int64_t b = begin_[t];
        const std::int64_t e = end_[t];
        const std::int64_t dim = c.embedding_dim();
        FusedTableState fresh = emb::detail::initial_state(optimizer_, e - b, dim, c.dtype());
        Tensor shard = Tensor::empty({e - b, dim}, c.dtype());
        const bool participates =
            plans_[t].kind == ShardingPlan::Kind::kRowWise || plans_[t].owner == comm_.rank();
        fresh.step = participates ? j.at("step").get<std::int64_t>() : 0;
        std::int64_t covered = 0;
        for (const json& s : m.at("shards")) {
          const json& rows = s.at("rows");
          if (!rows.contains(c.name())) continue;
          const std::int64_t fb = rows[c.name()][0].get<std::int64_t>();
          const std::int64_t fe = rows[c.name()][1].get<std::int64_t>();
          const std::int64_t lo = std::max(fb, b), hi = std::min(fe, e);
          if (lo >= hi) continue;
          const std::string fname = s.at("file").get<std::string>();
          if (fname.find('/') != std::string::npos) {
            throw FormatError(std::string(op) + ": shard file name \"" + fname + "\" has a '/'");
          }
          auto it = files.find(fname);
          if (it == files.end()) {
            it = files.emplace(fname, emb::io::read_safetensors(dir + "/" + fname)).first;
          }
          const emb::io::TensorFile& f = it->second;
          auto take = [&](const std::string& key, const Tensor& into, std::int64_t row_elems) {
            const Tensor& src = f.at(key);
            const auto crc = f.metadata.find("emb.crc32c." + key);
            if (crc == f.metadata.end() || crc->second != crc_hex(src)) {
              throw FormatError(std::string(op) + ": " + dir + "/" + fname + ": tensor " + key +
                                " fails its CRC-32C check");
            }
            if (src.dtype() != into.dtype() || src.dim() < 1 || src.size(0) != fe - fb ||
                src.numel() != (fe - fb) * row_elems) {
              throw FormatError(std::string(op) + ": " + dir + "/" + fname + ": tensor " + key +
                                " has shape " + shape_to_string(src.shape()) + ", expected " +
                                std::to_string(fe - fb) + " rows");
            }
            const std::size_t row = static_cast<std::size_t>(row_elems) * element_size(src.dtype());
            std::memcpy(static_cast<std::byte*>(into.raw_data()) + (lo - b) * row,
                        static_cast<const std::byte*>(src.raw_data()) + (lo - fb) * row,
                        static_cast<std::size_t>(hi - lo) * row);
          };
          take(c.name() + ".weight", shard, dim);
          for (const auto& [key, state] : fresh.tensors) {
            take(c.name() + "." + key, state, state.dim() == 2 ? dim : 1);
          }
          covered += hi - lo;
        }
        if (covered != e - b) {
          throw FormatError(std::string(op) + ": the shards of table \"" + c.name() +
                            "\" cover " + std::to_string(covered) + " of this rank's " +
                            std::to_string(e - b) + " rows");
        }
        new_shards[t] = shard;
        new_states[t] = fresh;
      }
    } catch (const json::exception& e) {
      throw FormatError(std::string(op) + ": " + dir + "/manifest.json: " + e.what());
    }
  });
  shards_ = std::move(new_shards);
  states_ = std::move(new_states);
}

}  // namespace emb::dist
