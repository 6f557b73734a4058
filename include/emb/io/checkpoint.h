// emb/io/checkpoint.h — tables and optimizer state saved together, crash-safe, verified on load.
//
//   emb::io::save_checkpoint("run/ckpt.safetensors", {{"user", users.weight()}}, &opt);
//   ...                                           // crash here: the previous file is intact
//   auto ck = emb::io::load_checkpoint("run/ckpt.safetensors", &opt);   // opt state restored
//   users.weight().copy_(ck.tables.at("user"));
//
// A checkpoint is a safetensors file: the tables under their names, each optimizer state tensor
// as "optim.<param>.<key>", and in __metadata__ the optimizer's name, learning rate and step
// counts and a CRC-32C of every tensor's bytes (see docs/FORMATS.md). Saving writes a temporary
// file in the same directory, fsyncs it, renames it over the path and fsyncs the directory: a
// crash at any moment leaves the previous checkpoint or the new one, complete.
#pragma once

#include <map>
#include <string>

#include "emb/optim/optimizer.h"
#include "emb/tensor.h"

namespace emb::io {

struct Checkpoint {
  std::map<std::string, Tensor> tables;
  /// The caller's metadata (emb's own "emb." keys removed).
  std::map<std::string, std::string> metadata;
};

/// Saves tables (names not starting with "optim.") and, when optimizer is given, its learning
/// rate and state; metadata keys must not start with "emb.". Throws ValueError or IoError
/// (and then the file at path is as it was).
void save_checkpoint(const std::string& path, const std::map<std::string, Tensor>& tables,
                     const optim::Optimizer* optimizer = nullptr,
                     const std::map<std::string, std::string>& metadata = {});

/// Loads a checkpoint, verifying every checksum; when optimizer is given, restores its state
/// (the same kind of optimizer over parameters of the same shapes). Files written by
/// Optimizer::save (the older state-only format) restore the optimizer and have no tables.
/// Throws IoError, FormatError (a bad file, a checksum mismatch, another optimizer's state,
/// state that does not fit the parameters) and then changes nothing.
Checkpoint load_checkpoint(const std::string& path, optim::Optimizer* optimizer = nullptr);

}  // namespace emb::io
