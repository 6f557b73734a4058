// emb/dist/mpi_comm.h — opt-in: a Communicator over a caller's MPI_Comm. The only emb header
// that includes <mpi.h>.
//
//   MPI_Comm mine = ...;
//   emb::dist::Communicator comm = emb::dist::from_mpi_comm(mine);
#pragma once

#include <mpi.h>

#include "emb/dist/communicator.h"

namespace emb::dist {

/// A Communicator over a private duplicate of comm (MPI_Comm_dup: emb's messages never match
/// the caller's), freed with the last copy of the Communicator. Throws DistError.
Communicator from_mpi_comm(MPI_Comm comm);

/// The duplicate emb communicates on (for the caller's own collectives over the same ranks).
MPI_Comm native_comm(const Communicator& comm);

}  // namespace emb::dist
