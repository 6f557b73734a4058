// emb/dist/communicator.h — the ranks a sharded collection spreads over (an MPI communicator,
// opaque: this header does not include <mpi.h>; emb/dist/mpi_comm.h wraps a caller's MPI_Comm).
//
//   int main(int argc, char** argv) {
//     emb::dist::Environment mpi(argc, argv);          // MPI_Init ... MPI_Finalize
//     emb::dist::Communicator comm = emb::dist::Communicator::world();
//     ... comm.rank(), comm.size() ...
//   }
#pragma once

#include <cstdint>
#include <memory>
#include <utility>

#include "emb/error.h"

namespace emb::dist {

/// A failed MPI call, or a rank that refused a collective call (its message names the rank).
class DistError : public Error {
 public:
  using Error::Error;
};

/// MPI's lifetime: initializes MPI (with MPI_THREAD_FUNNELED) unless the program already did,
/// and finalizes it on destruction if it initialized it. Throws DistError.
class Environment {
 public:
  Environment(int& argc, char**& argv);
  Environment();
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

 private:
  bool owns_ = false;
};

/// Bytes this rank handed to MPI for other ranks (its own share stays local and is not counted).
struct CommStats {
  std::int64_t bytes_sent = 0;
  std::int64_t messages = 0;  // collective calls
};

class Communicator {
 public:
  /// A private duplicate of MPI_COMM_WORLD (emb's messages never mix with the caller's), with
  /// errors returned (thrown as DistError) rather than aborting silently.
  static Communicator world();

  int rank() const;
  int size() const;
  /// Waits for every rank. Throws DistError.
  void barrier() const;
  /// True on every rank when `ok` is true on every rank (an MPI_Allreduce); the sharded
  /// collection uses it so that a call refused on one rank is refused on all, before any
  /// exchange. Throws DistError.
  bool all_ok(bool ok) const;
  /// The lowest rank whose `ok` is false, or -1.
  int first_failed(bool ok) const;

  const CommStats& stats() const;
  void reset_stats() const;

  struct Impl;
  explicit Communicator(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  const std::shared_ptr<Impl>& impl() const { return impl_; }

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace emb::dist
