// What both fuzz targets check about a thrown error, and how they report a broken promise.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

namespace emb::fuzz {

// A complete message names the operation before a colon and says something after it
// ("embedding: indices[1] = 12 is out of range ..."), or is one of the hyper-parameter texts
// kept from PyTorch ("Invalid learning rate: -1.0", "Nesterov momentum requires ...").
inline bool complete_message(const std::string& m) {
  if (m.empty() || m.back() == ' ' || m.back() == ':') return false;
  if (m.rfind("Invalid ", 0) == 0 || m.rfind("Nesterov momentum requires", 0) == 0) return true;
  const std::size_t colon = m.find(": ");
  if (colon == std::string::npos || colon == 0 || colon + 2 >= m.size()) return false;
  // The operation: an identifier with :: and an optional parenthesized note ("embedding
  // (max_norm)", "Adam::load: path").
  const char first = m[0];
  return (first >= 'A' && first <= 'Z') || (first >= 'a' && first <= 'z') || first == '_';
}

[[noreturn]] inline void fail(const char* target, const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", target, what.c_str());
  std::abort();
}

}  // namespace emb::fuzz
