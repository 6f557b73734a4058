// emb/error.h — the exception types every emb function throws.
//
// Named after the Python exceptions PyTorch users already know. Every message names the operation,
// the offending position and value, and the valid range, e.g.
//   embedding: indices[1][3] = 12 is out of range for a table of 10 rows
// A call that throws has changed nothing: validation happens before any write.
#pragma once

#include <stdexcept>
#include <string>

namespace emb {

/// Base of every exception emb throws.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// An index (an id, a padding_idx) outside the valid range.
class IndexError : public Error {
 public:
  using Error::Error;
};

/// A bad argument: wrong shape, dtype, size or option value.
class ValueError : public Error {
 public:
  using Error::Error;
};

/// A combination PyTorch does not define either (e.g. per_sample_weights with mode max).
class NotImplementedError : public Error {
 public:
  using Error::Error;
};

/// A file whose bytes do not follow its format.
class FormatError : public Error {
 public:
  using Error::Error;
};

/// A failed read or write of a file.
class IoError : public Error {
 public:
  using Error::Error;
};

}  // namespace emb
