#include <mpi.h>

#include <algorithm>
#include <climits>
#include <string>

#include "dist/comm_impl.h"
#include "emb/dist/mpi_comm.h"

namespace emb::dist {

namespace detail {

void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw DistError(std::string(what) + ": " + std::string(text, static_cast<std::size_t>(len)));
}

namespace {

int as_count(std::size_t n, const char* what) {
  if (n > static_cast<std::size_t>(INT_MAX)) {
    throw DistError(std::string(what) + ": a message of " + std::to_string(n) +
                    " bytes exceeds MPI's int count (split the batch)");
  }
  return static_cast<int>(n);
}

}  // namespace

std::vector<std::vector<std::byte>> exchange(const Communicator& comm,
                                             const std::vector<std::vector<std::byte>>& send) {
  const auto& impl = *comm.impl();
  const int p = impl.size;
  std::vector<std::int64_t> send_counts(static_cast<std::size_t>(p));
  std::vector<std::int64_t> recv_counts(static_cast<std::size_t>(p));
  for (int d = 0; d < p; ++d) send_counts[d] = static_cast<std::int64_t>(send[d].size());
  check_mpi(MPI_Alltoall(send_counts.data(), 1, MPI_INT64_T, recv_counts.data(), 1, MPI_INT64_T,
                         impl.comm),
            "emb::dist exchange (MPI_Alltoall)");
  std::vector<int> sc(p), sd(p), rc(p), rd(p);
  std::size_t s_total = 0, r_total = 0;
  for (int d = 0; d < p; ++d) {
    sc[d] = as_count(send[d].size(), "emb::dist exchange");
    rc[d] = as_count(static_cast<std::size_t>(recv_counts[d]), "emb::dist exchange");
    sd[d] = as_count(s_total, "emb::dist exchange");
    rd[d] = as_count(r_total, "emb::dist exchange");
    s_total += send[d].size();
    r_total += static_cast<std::size_t>(recv_counts[d]);
  }
  std::vector<std::byte> sbuf(s_total), rbuf(r_total);
  for (int d = 0; d < p; ++d) std::copy(send[d].begin(), send[d].end(), sbuf.begin() + sd[d]);
  check_mpi(MPI_Alltoallv(sbuf.data(), sc.data(), sd.data(), MPI_BYTE, rbuf.data(), rc.data(),
                          rd.data(), MPI_BYTE, impl.comm),
            "emb::dist exchange (MPI_Alltoallv)");
  for (int d = 0; d < p; ++d) {
    if (d == impl.rank) continue;
    impl.stats.bytes_sent += static_cast<std::int64_t>(sizeof(std::int64_t) + send[d].size());
  }
  impl.stats.messages += 2;
  std::vector<std::vector<std::byte>> out(static_cast<std::size_t>(p));
  for (int s = 0; s < p; ++s) out[s].assign(rbuf.begin() + rd[s], rbuf.begin() + rd[s] + rc[s]);
  return out;
}

std::vector<std::vector<std::byte>> all_gather(const Communicator& comm,
                                               const std::vector<std::byte>& mine) {
  const auto& impl = *comm.impl();
  const int p = impl.size;
  std::int64_t n = static_cast<std::int64_t>(mine.size());
  std::vector<std::int64_t> counts(static_cast<std::size_t>(p));
  check_mpi(MPI_Allgather(&n, 1, MPI_INT64_T, counts.data(), 1, MPI_INT64_T, impl.comm),
            "emb::dist all_gather (MPI_Allgather)");
  std::vector<int> rc(p), rd(p);
  std::size_t total = 0;
  for (int s = 0; s < p; ++s) {
    rc[s] = as_count(static_cast<std::size_t>(counts[s]), "emb::dist all_gather");
    rd[s] = as_count(total, "emb::dist all_gather");
    total += static_cast<std::size_t>(counts[s]);
  }
  std::vector<std::byte> rbuf(total);
  check_mpi(MPI_Allgatherv(mine.data(), as_count(mine.size(), "emb::dist all_gather"), MPI_BYTE,
                           rbuf.data(), rc.data(), rd.data(), MPI_BYTE, impl.comm),
            "emb::dist all_gather (MPI_Allgatherv)");
  impl.stats.bytes_sent += static_cast<std::int64_t>(mine.size()) * (p - 1);
  impl.stats.messages += 2;
  std::vector<std::vector<std::byte>> out(static_cast<std::size_t>(p));
  for (int s = 0; s < p; ++s) out[s].assign(rbuf.begin() + rd[s], rbuf.begin() + rd[s] + rc[s]);
  return out;
}

}  // namespace detail

Communicator::Impl::~Impl() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
}

Environment::Environment(int& argc, char**& argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return;
  int provided = 0;
  detail::check_mpi(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided),
                    "emb::dist::Environment (MPI_Init_thread)");
  owns_ = true;
}

Environment::Environment() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return;
  int provided = 0;
  detail::check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided),
                    "emb::dist::Environment (MPI_Init_thread)");
  owns_ = true;
}

Environment::~Environment() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owns_ && !finalized) MPI_Finalize();
}

Communicator from_mpi_comm(MPI_Comm comm) {
  auto impl = std::make_shared<Communicator::Impl>();
  detail::check_mpi(MPI_Comm_dup(comm, &impl->comm), "emb::dist::from_mpi_comm (MPI_Comm_dup)");
  detail::check_mpi(MPI_Comm_set_errhandler(impl->comm, MPI_ERRORS_RETURN),
                    "emb::dist::from_mpi_comm (MPI_Comm_set_errhandler)");
  MPI_Comm_rank(impl->comm, &impl->rank);
  MPI_Comm_size(impl->comm, &impl->size);
  return Communicator(std::move(impl));
}

MPI_Comm native_comm(const Communicator& comm) {
  return comm.impl()->comm;
}

Communicator Communicator::world() {
  return from_mpi_comm(MPI_COMM_WORLD);
}

int Communicator::rank() const {
  return impl_->rank;
}

int Communicator::size() const {
  return impl_->size;
}

void Communicator::barrier() const {
  detail::check_mpi(MPI_Barrier(impl_->comm), "emb::dist barrier (MPI_Barrier)");
}

int Communicator::first_failed(bool ok) const {
  int mine = ok ? impl_->size : impl_->rank;
  int lowest = 0;
  detail::check_mpi(MPI_Allreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, impl_->comm),
                    "emb::dist (MPI_Allreduce)");
  impl_->stats.bytes_sent += static_cast<std::int64_t>(sizeof(int)) * (impl_->size > 1 ? 1 : 0);
  impl_->stats.messages += 1;
  return lowest == impl_->size ? -1 : lowest;
}

bool Communicator::all_ok(bool ok) const {
  return first_failed(ok) < 0;
}

const CommStats& Communicator::stats() const {
  return impl_->stats;
}

void Communicator::reset_stats() const {
  impl_->stats = CommStats{};
}

}  // namespace emb::dist
