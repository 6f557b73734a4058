// The MPI side of emb::dist::Communicator, and the one exchange the sharded collection uses:
// counts with MPI_Alltoall, then bytes with MPI_Alltoallv.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "emb/dist/communicator.h"

namespace emb::dist {

struct Communicator::Impl {
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0;
  int size = 1;
  mutable CommStats stats;
  ~Impl();
};

namespace detail {

/// Throws DistError "<what>: <MPI's message>" unless rc is MPI_SUCCESS.
void check_mpi(int rc, const char* what);

/// send[d] goes to rank d; returns recv[s], what rank s sent here. Collective.
std::vector<std::vector<std::byte>> exchange(const Communicator& comm,
                                             const std::vector<std::vector<std::byte>>& send);

/// Every rank's bytes, on every rank (MPI_Allgatherv). Collective.
std::vector<std::vector<std::byte>> all_gather(const Communicator& comm,
                                               const std::vector<std::byte>& mine);

}  // namespace detail
}  // namespace emb::dist
