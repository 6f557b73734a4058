// The sharded collection: routing of ids to the ranks that hold their rows, the two exchanges of
// a forward (ids out, pooled rows back) and the one of a backward (ids and pooled-row gradients
// out), the owners' pooling and updates with the single-process code (collection_ops.h).
#include "emb/dist/sharded_embedding_bag_collection.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "collection/collection_ops.h"
#include "dist/comm_impl.h"
#include "index_check.h"
#include "kernels/ref/embedding_ref.h"

namespace emb::dist {

namespace {

using emb::detail::FeaturePlan;

std::string str(std::int64_t v) {
  return std::to_string(v);
}

// ---- Messages: int64 fields and raw value blocks, appended and read in the same order. ------

struct Writer {
  std::vector<std::byte>& buf;
  void i64(std::int64_t v) { bytes(&v, sizeof v); }
  void i64s(const std::int64_t* p, std::size_t n) { bytes(p, n * sizeof(std::int64_t)); }
  void bytes(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    buf.insert(buf.end(), b, b + n);
  }
};

struct Reader {
  const std::vector<std::byte>& buf;
  std::size_t pos = 0;
  const std::byte* take(std::size_t n) {
    if (n > buf.size() - pos) {
      throw DistError("emb::dist: a message from another rank is shorter than its fields say");
    }
    const std::byte* p = buf.data() + pos;
    pos += n;
    return p;
  }
  std::int64_t i64() {
    std::int64_t v;
    std::memcpy(&v, take(sizeof v), sizeof v);
    return v;
  }
  std::vector<std::int64_t> i64s(std::int64_t n) {
    if (n < 0) throw DistError("emb::dist: a message from another rank holds a negative count");
    std::vector<std::int64_t> v(static_cast<std::size_t>(n));
    std::memcpy(v.data(), take(v.size() * sizeof(std::int64_t)), v.size() * sizeof(std::int64_t));
    return v;
  }
};

// Rank r of p holds rows [r n / p, (r + 1) n / p) of a row-wise table of n rows.
std::int64_t range_begin(std::int64_t n, int r, int p) {
  return static_cast<std::int64_t>((static_cast<__int128>(n) * r) / p);
}

// What one rank sends one owner about one table: its bags' ids that the owner holds.
struct Request {
  std::vector<std::int64_t> lengths;  // [B]: ids of bag b that go to this owner
  std::vector<std::int64_t> ids;      // the owner's local row numbers, in position order
};

// One table's routing on the requesting side.
struct Route {
  std::vector<Request> to;       // [P] (table-wise: only the owner's is used)
  std::vector<int> dest_of_pos;  // [n]: the rank holding each position's row
};

// What one owner received from one rank about one table.
struct Received {
  std::vector<std::int64_t> bounds;  // [B + 1] over ids
  std::vector<std::int64_t> sizes;   // [B]: the whole bags' lengths (row-wise mean), else empty
  Tensor ids;                        // [n] int64, local rows
};

}  // namespace

struct ShardedEmbeddingBagCollection::Exchange {
  // Does rank d receive anything about table t?
  static bool participates(const ShardedEmbeddingBagCollection& c, std::size_t t, int d) {
    return c.plans_[t].kind == ShardingPlan::Kind::kRowWise || c.plans_[t].owner == d;
  }
  static bool row_wise(const ShardedEmbeddingBagCollection& c, std::size_t t) {
    return c.plans_[t].kind == ShardingPlan::Kind::kRowWise;
  }
  static bool ships_rows(const ShardedEmbeddingBagCollection& c, std::size_t t) {
    return row_wise(c, t) && (c.pooling_ == RowWisePooling::kExact ||
                              c.configs_[t].mode() == EmbeddingBagMode::kMax);
  }
  static bool sends_sizes(const ShardedEmbeddingBagCollection& c, std::size_t t) {
    return row_wise(c, t) && c.configs_[t].mode() == EmbeddingBagMode::kMean;
  }

  static Route route(const ShardedEmbeddingBagCollection& c, std::size_t t,
                     const FeaturePlan& plan) {
    const int p = c.comm_.size();
    Route r;
    r.to.resize(static_cast<std::size_t>(p));
    const std::int64_t rows = c.configs_[t].num_embeddings();
    std::vector<std::int64_t> starts(static_cast<std::size_t>(p) + 1);
    for (int k = 0; k <= p; ++k) starts[k] = range_begin(rows, k, p);
    for (auto& q : r.to) q.lengths.assign(static_cast<std::size_t>(plan.num_bags()), 0);
    r.dest_of_pos.resize(static_cast<std::size_t>(plan.n()));
    emb::detail::visit_ids(plan.ids, [&](const auto* ids) {
      for (std::int64_t b = 0; b < plan.num_bags(); ++b) {
        for (std::int64_t i = plan.bounds[b]; i < plan.bounds[b + 1]; ++i) {
          const std::int64_t id = ids[i];
          int d = c.plans_[t].owner;
          std::int64_t local = id;
          if (row_wise(c, t)) {
            d = static_cast<int>(std::upper_bound(starts.begin(), starts.end(), id) -
                                 starts.begin()) -
                1;
            local = id - starts[d];
          }
          r.dest_of_pos[static_cast<std::size_t>(i)] = d;
          ++r.to[d].lengths[static_cast<std::size_t>(b)];
          r.to[d].ids.push_back(local);
        }
      }
    });
    return r;
  }

  // The request part of a message to rank d: per table it takes part in, B, the lengths, the
  // whole bags' sizes (row-wise mean) and the ids.
  static void write_request(const ShardedEmbeddingBagCollection& c, std::size_t t, int d,
                            const FeaturePlan& plan, const Route& r, Writer& w) {
    const Request& q = r.to[d];
    w.i64(plan.num_bags());
    w.i64s(q.lengths.data(), q.lengths.size());
    if (sends_sizes(c, t)) {
      const std::vector<std::int64_t> sizes = emb::detail::bag_sizes(plan.bounds);
      w.i64s(sizes.data(), sizes.size());
    }
    w.i64(static_cast<std::int64_t>(q.ids.size()));
    w.i64s(q.ids.data(), q.ids.size());
  }

  static Received read_request(const ShardedEmbeddingBagCollection& c, std::size_t t, Reader& rd) {
    Received out;
    const std::int64_t nb = rd.i64();
    const std::vector<std::int64_t> lengths = rd.i64s(nb);
    if (sends_sizes(c, t)) out.sizes = rd.i64s(nb);
    const std::int64_t n = rd.i64();
    const std::vector<std::int64_t> ids = rd.i64s(n);
    out.bounds.assign(static_cast<std::size_t>(nb) + 1, 0);
    for (std::int64_t b = 0; b < nb; ++b) out.bounds[b + 1] = out.bounds[b] + lengths[b];
    const std::int64_t local_rows = c.end_[t] - c.begin_[t];
    if (out.bounds.back() != n) throw DistError("emb::dist: bag lengths and ids disagree");
    for (std::int64_t id : ids) {
      if (id < 0 || id >= local_rows) {
        throw DistError("emb::dist: a routed id " + str(id) + " is outside this rank's " +
                        str(local_rows) + " rows of table \"" + c.configs_[t].name() + "\"");
      }
    }
    out.ids = Tensor::from_vector<std::int64_t>(ids, {n});
    return out;
  }
};

namespace {

// Runs fn on this rank; then every rank learns whether all succeeded. The rank that failed
// rethrows its own error; the others throw DistError naming it. Nothing is sent before.
template <typename Fn>
void agree(const Communicator& comm, const char* op, Fn&& fn) {
  std::exception_ptr error;
  try {
    fn();
  } catch (const Error&) {
    error = std::current_exception();
  }
  const int failed = comm.first_failed(!error);
  if (error) std::rethrow_exception(error);
  if (failed >= 0) {
    throw DistError(std::string(op) + ": rank " + std::to_string(failed) +
                    " refused its arguments (its own error says why); nothing was sent or "
                    "written on any rank");
  }
}

}  // namespace

ShardedEmbeddingBagCollection::ShardedEmbeddingBagCollection(
    Communicator comm, std::vector<EmbeddingBagConfig> tables, std::vector<ShardingPlan> plans,
    FusedOptimizerOptions optimizer, RowWisePooling pooling, Generator& generator, ShardInit init)
    : comm_(std::move(comm)),
      plans_(std::move(plans)),
      optimizer_(std::move(optimizer)),
      pooling_(pooling) {
  const char* op = "ShardedEmbeddingBagCollection";
  if (plans_.size() != tables.size()) {
    throw ValueError(std::string(op) + ": " + str(static_cast<std::int64_t>(plans_.size())) +
                     " plans for " + str(static_cast<std::int64_t>(tables.size())) + " tables");
  }
  for (std::size_t t = 0; t < plans_.size(); ++t) {
    const ShardingPlan& p = plans_[t];
    if (p.kind != ShardingPlan::Kind::kTableWise && p.kind != ShardingPlan::Kind::kRowWise) {
      throw ValueError(std::string(op) + ": plan " + str(static_cast<std::int64_t>(t)) +
                       " has an unknown kind");
    }
    if (p.kind == ShardingPlan::Kind::kTableWise && (p.owner < 0 || p.owner >= comm_.size())) {
      throw ValueError(std::string(op) + ": plan " + str(static_cast<std::int64_t>(t)) +
                       ": owner " + str(p.owner) + " is not a rank of a communicator of " +
                       str(comm_.size()) + " ranks");
    }
  }
  if (pooling_ != RowWisePooling::kPartial && pooling_ != RowWisePooling::kExact) {
    throw ValueError(std::string(op) + ": unknown row-wise pooling");
  }
  if (init != ShardInit::kLikeOneProcess && init != ShardInit::kPerShard) {
    throw ValueError(std::string(op) + ": unknown ShardInit");
  }
  emb::detail::check_configs(tables, op);
  emb::detail::check_fused_optimizer(optimizer_, op);
  const int rank = comm_.rank();
  const int p = comm_.size();
  // kLikeOneProcess: the whole tables, drawn (or taken) exactly as one process would; this rank
  // keeps its rows. kPerShard: only this rank's rows are drawn.
  std::optional<EmbeddingBagCollection> whole;
  std::optional<Generator> local;
  if (init == ShardInit::kLikeOneProcess) {
    whole.emplace(tables, optimizer_, generator);
  } else {
    local.emplace(generator.next_u64() ^ (0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(rank + 1)));
  }
  for (std::size_t t = 0; t < tables.size(); ++t) {
    configs_.push_back(tables[t]);
    configs_.back().weight(Tensor());
    const std::int64_t rows = configs_[t].num_embeddings();
    std::int64_t b = 0, e = 0;
    if (plans_[t].kind == ShardingPlan::Kind::kRowWise) {
      b = range_begin(rows, rank, p);
      e = range_begin(rows, rank + 1, p);
    } else if (plans_[t].owner == rank) {
      e = rows;
    }
    begin_.push_back(b);
    end_.push_back(e);
    const std::int64_t dim = configs_[t].embedding_dim();
    const DType dtype = configs_[t].dtype();
    Tensor shard = Tensor::empty({e - b, dim}, dtype);
    const std::size_t row_bytes = static_cast<std::size_t>(dim) * element_size(dtype);
    const Tensor source = whole ? whole->weight(t) : tables[t].weight();
    if (source.defined()) {
      if (e > b && row_bytes > 0) {
        std::memcpy(shard.raw_data(),
                    static_cast<const std::byte*>(source.raw_data()) + b * row_bytes,
                    static_cast<std::size_t>(e - b) * row_bytes);
      }
    } else {
      Tensor f = Tensor::empty({e - b, dim}, DType::kFloat32);
      local->normal_(f);
      shard = dtype == DType::kFloat32 ? f : f.to(dtype);
    }
    shards_.push_back(shard);
    states_.push_back(emb::detail::initial_state(optimizer_, e - b, dim, dtype));
  }
}

std::vector<Tensor> ShardedEmbeddingBagCollection::forward(const KeyedJaggedBatch& batch) {
  const char* op = "ShardedEmbeddingBagCollection::forward";
  const int p = comm_.size();
  const std::size_t nt = configs_.size();
  std::vector<FeaturePlan> plans;
  agree(comm_, op, [&] { plans = emb::detail::plan_batch(op, batch, configs_); });

  // 1. Ids to their owners.
  std::vector<Route> routes;
  for (std::size_t t = 0; t < nt; ++t) routes.push_back(Exchange::route(*this, t, plans[t]));
  std::vector<std::vector<std::byte>> send(static_cast<std::size_t>(p));
  for (int d = 0; d < p; ++d) {
    Writer w{send[d]};
    for (std::size_t t = 0; t < nt; ++t) {
      if (Exchange::participates(*this, t, d)) {
        Exchange::write_request(*this, t, d, plans[t], routes[t], w);
      }
    }
  }
  const std::vector<std::vector<std::byte>> got = emb::dist::detail::exchange(comm_, send);

  // 2. Owners pool (or gather) for every requesting rank, in one pass.
  const int me = comm_.rank();
  std::vector<std::vector<Received>> recv(static_cast<std::size_t>(p));  // [src][table]
  for (int s = 0; s < p; ++s) {
    Reader rd{got[s]};
    recv[s].resize(nt);
    for (std::size_t t = 0; t < nt; ++t) {
      if (Exchange::participates(*this, t, me)) recv[s][t] = Exchange::read_request(*this, t, rd);
    }
  }
  std::vector<std::vector<Tensor>> reply(static_cast<std::size_t>(p));  // [src][table]
  std::vector<std::vector<std::vector<std::int64_t>>> mean_sizes(static_cast<std::size_t>(p));
  std::vector<emb::detail::PoolJob> jobs;
  for (int s = 0; s < p; ++s) {
    reply[s].resize(nt);
    mean_sizes[s].resize(nt);
    for (std::size_t t = 0; t < nt; ++t) {
      if (!Exchange::participates(*this, t, me)) continue;
      const Received& r = recv[s][t];
      const std::int64_t dim = configs_[t].embedding_dim();
      const DType dtype = configs_[t].dtype();
      if (Exchange::ships_rows(*this, t)) {  // the rows themselves, in position order
        const std::int64_t n = r.ids.numel();
        Tensor rows = Tensor::empty({n, dim}, dtype);
        const std::size_t row_bytes = static_cast<std::size_t>(dim) * element_size(dtype);
        const auto* src = static_cast<const std::byte*>(shards_[t].raw_data());
        auto* dst = static_cast<std::byte*>(rows.raw_data());
        const std::int64_t* ids = r.ids.data<std::int64_t>();
        for (std::int64_t i = 0; i < n; ++i) {
          std::memcpy(dst + i * row_bytes, src + ids[i] * row_bytes, row_bytes);
        }
        reply[s][t] = rows;
        continue;
      }
      const std::int64_t nb = static_cast<std::int64_t>(r.bounds.size()) - 1;
      reply[s][t] = Tensor::empty({nb, dim}, dtype);
      // Table-wise: the table's own mode. Row-wise partial: sums (the requester divides).
      const EmbeddingBagMode mode =
          Exchange::row_wise(*this, t) ? EmbeddingBagMode::kSum : configs_[t].mode();
      if (mode == EmbeddingBagMode::kMean) mean_sizes[s][t] = emb::detail::bag_sizes(r.bounds);
      jobs.push_back({shards_[t], mode, r.ids.raw_data(), true, r.bounds.data(), nb,
                      mean_sizes[s][t].empty() ? nullptr : mean_sizes[s][t].data(),
                      reply[s][t].raw_data()});
    }
  }
  emb::detail::pool_all(jobs);

  // 3. Pooled rows (or rows) back to the requesters.
  std::vector<std::vector<std::byte>> back(static_cast<std::size_t>(p));
  for (int s = 0; s < p; ++s) {
    Writer w{back[s]};
    for (std::size_t t = 0; t < nt; ++t) {
      if (reply[s][t].defined()) w.bytes(reply[s][t].raw_data(), reply[s][t].nbytes());
    }
  }
  const std::vector<std::vector<std::byte>> pooled = emb::dist::detail::exchange(comm_, back);

  // 4. The requester assembles its bags.
  std::vector<Tensor> out;
  std::vector<Reader> readers;
  for (int d = 0; d < p; ++d) readers.push_back(Reader{pooled[d]});
  std::vector<Tensor> gathered(nt);
  std::vector<std::vector<std::int64_t>> iota(nt), sizes(nt);
  std::vector<emb::detail::PoolJob> exact_jobs;
  for (std::size_t t = 0; t < nt; ++t) {
    const FeaturePlan& plan = plans[t];
    const std::int64_t nb = plan.num_bags();
    const std::int64_t dim = configs_[t].embedding_dim();
    const DType dtype = configs_[t].dtype();
    const std::size_t esize = element_size(dtype);
    const std::size_t row_bytes = static_cast<std::size_t>(dim) * esize;
    out.push_back(Tensor::empty({nb, dim}, dtype));
    if (!Exchange::row_wise(*this, t)) {
      const std::byte* src = readers[plans_[t].owner].take(static_cast<std::size_t>(nb) * row_bytes);
      if (nb > 0 && row_bytes > 0) std::memcpy(out.back().raw_data(), src, nb * row_bytes);
      continue;
    }
    if (Exchange::ships_rows(*this, t)) {
      // The rows in position order, then the ordinary kernel over them (ids 0 .. n - 1).
      const std::int64_t n = plan.n();
      gathered[t] = Tensor::empty({n, dim}, dtype);
      std::vector<const std::byte*> from(static_cast<std::size_t>(p));
      for (int d = 0; d < p; ++d) {
        from[d] = readers[d].take(routes[t].to[d].ids.size() * row_bytes);
      }
      auto* dst = static_cast<std::byte*>(gathered[t].raw_data());
      for (std::int64_t i = 0; i < n; ++i) {
        const int d = routes[t].dest_of_pos[static_cast<std::size_t>(i)];
        std::memcpy(dst + i * row_bytes, from[d], row_bytes);
        from[d] += row_bytes;
      }
      iota[t].resize(static_cast<std::size_t>(n));
      for (std::int64_t i = 0; i < n; ++i) iota[t][static_cast<std::size_t>(i)] = i;
      if (configs_[t].mode() == EmbeddingBagMode::kMean) sizes[t] = emb::detail::bag_sizes(plan.bounds);
      exact_jobs.push_back({gathered[t], configs_[t].mode(), iota[t].data(), true,
                            plan.bounds.data(), nb, sizes[t].empty() ? nullptr : sizes[t].data(),
                            out.back().raw_data()});
      continue;
    }
    // Partial sums: added in rank order in the accumulation type, rounded once; mode mean then
    // divides by the whole bag's length (as the kernel divides a sum).
    std::vector<const std::byte*> parts(static_cast<std::size_t>(p));
    for (int d = 0; d < p; ++d) parts[d] = readers[d].take(static_cast<std::size_t>(nb) * row_bytes);
    const std::vector<std::int64_t> bag_len = emb::detail::bag_sizes(plan.bounds);
    const bool mean = configs_[t].mode() == EmbeddingBagMode::kMean;
    emb::detail::visit_floating(dtype, [&](auto tag) {
      using T = decltype(tag);
      using A = emb::detail::ref::acc_t<T>;
      T* o = out.back().data<T>();
      for (std::int64_t b = 0; b < nb; ++b) {
        const std::int64_t len = bag_len[static_cast<std::size_t>(b)];
        const A div = mean && len > 0 ? A(T(static_cast<A>(len))) : A(0);
        for (std::int64_t e = 0; e < dim; ++e) {
          A acc = 0;
          for (int d = 0; d < p; ++d) {
            T v;
            std::memcpy(&v, parts[d] + (b * dim + e) * static_cast<std::int64_t>(esize), esize);
            acc = acc + A(v);
          }
          T r = T(acc);
          if (div != A(0)) r = T(A(r) / div);
          o[b * dim + e] = r;
        }
      }
    });
  }
  emb::detail::pool_all(exact_jobs);
  return out;
}

void ShardedEmbeddingBagCollection::backward_and_step(const KeyedJaggedBatch& batch,
                                                      const std::vector<Tensor>& grad_outputs) {
  const char* op = "ShardedEmbeddingBagCollection::backward_and_step";
  const int p = comm_.size();
  const int me = comm_.rank();
  const std::size_t nt = configs_.size();
  std::vector<FeaturePlan> plans;
  agree(comm_, op, [&] {
    plans = emb::detail::plan_batch(op, batch, configs_);
    emb::detail::check_grad_outputs(op, grad_outputs, plans, configs_);
    for (std::size_t t = 0; t < nt; ++t) {
      if (configs_[t].mode() == EmbeddingBagMode::kMax) {
        throw NotImplementedError(std::string(op) + " (table \"" + configs_[t].name() +
                                  "\"): mode max has no sparse gradient");
      }
      emb::detail::check_trainable(shards_[t], states_[t], op, configs_[t].name());
    }
  });

  // 1. Ids and the gradient rows of the bags that have ids there, to every owner.
  std::vector<std::vector<std::byte>> send(static_cast<std::size_t>(p));
  std::vector<Route> routes;
  for (std::size_t t = 0; t < nt; ++t) routes.push_back(Exchange::route(*this, t, plans[t]));
  for (int d = 0; d < p; ++d) {
    Writer w{send[d]};
    for (std::size_t t = 0; t < nt; ++t) {
      if (!Exchange::participates(*this, t, d)) continue;
      Exchange::write_request(*this, t, d, plans[t], routes[t], w);
      const std::size_t row_bytes = static_cast<std::size_t>(configs_[t].embedding_dim()) *
                                    element_size(configs_[t].dtype());
      const auto* g = static_cast<const std::byte*>(grad_outputs[t].raw_data());
      const std::vector<std::int64_t>& len = routes[t].to[d].lengths;
      for (std::size_t b = 0; b < len.size(); ++b) {
        if (len[b] > 0) w.bytes(g + b * row_bytes, row_bytes);
      }
    }
  }
  const std::vector<std::vector<std::byte>> got = emb::dist::detail::exchange(comm_, send);

  // 2. Each owner's uncoalesced gradient, in global input order (rank 0's positions first),
  // then one fused update of every table it holds rows of.
  std::vector<std::vector<std::int64_t>> rows(nt), src(nt), scale_sizes(nt);
  std::vector<std::vector<std::byte>> grads(nt);
  std::vector<std::int64_t> grad_rows(nt, 0);
  for (int s = 0; s < p; ++s) {
    Reader rd{got[s]};
    for (std::size_t t = 0; t < nt; ++t) {
      if (!Exchange::participates(*this, t, me)) continue;
      const Received r = Exchange::read_request(*this, t, rd);
      const std::size_t row_bytes = static_cast<std::size_t>(configs_[t].embedding_dim()) *
                                    element_size(configs_[t].dtype());
      const std::int64_t* ids = r.ids.data<std::int64_t>();
      for (std::size_t b = 0; b + 1 < r.bounds.size(); ++b) {
        if (r.bounds[b + 1] == r.bounds[b]) continue;
        const std::byte* g = rd.take(row_bytes);
        grads[t].insert(grads[t].end(), g, g + row_bytes);
        // Mode mean scales by the whole bag's length: the sizes sent (row-wise) or this bag's.
        scale_sizes[t].push_back(r.sizes.empty() ? r.bounds[b + 1] - r.bounds[b] : r.sizes[b]);
        for (std::int64_t i = r.bounds[b]; i < r.bounds[b + 1]; ++i) {
          rows[t].push_back(ids[i]);
          src[t].push_back(grad_rows[t]);
        }
        ++grad_rows[t];
      }
    }
  }
  std::vector<Tensor> grad_tensors(nt), scales(nt);
  std::vector<emb::detail::UpdateJob> jobs;
  for (std::size_t t = 0; t < nt; ++t) {
    if (!Exchange::participates(*this, t, me)) continue;
    const DType dtype = configs_[t].dtype();
    grad_tensors[t] = Tensor::empty({grad_rows[t], configs_[t].embedding_dim()}, dtype);
    if (!grads[t].empty()) std::memcpy(grad_tensors[t].raw_data(), grads[t].data(), grads[t].size());
    if (configs_[t].mode() == EmbeddingBagMode::kMean) {
      scales[t] = emb::detail::mean_bag_scale(scale_sizes[t], dtype);
    }
    jobs.push_back({shards_[t], &states_[t], rows[t].data(), src[t].data(),
                    static_cast<std::int64_t>(rows[t].size()), grad_tensors[t].raw_data(),
                    scales[t].defined() ? scales[t].raw_data() : nullptr});
  }
  emb::detail::fused_update(optimizer_, jobs);
}

namespace {

// Every rank's rows of a [rows, *] tensor, concatenated in rank order, on every rank.
Tensor gather_rows_of(const Communicator& comm, const Tensor& mine, const Shape& whole) {
  std::vector<std::byte> bytes(mine.nbytes());
  if (!bytes.empty()) std::memcpy(bytes.data(), mine.raw_data(), bytes.size());
  const std::vector<std::vector<std::byte>> all = emb::dist::detail::all_gather(comm, bytes);
  Tensor out = Tensor::empty(whole, mine.dtype());
  std::size_t at = 0;
  for (const auto& part : all) {
    if (at + part.size() > out.nbytes()) throw DistError("emb::dist gather: shards overlap");
    if (!part.empty()) std::memcpy(static_cast<std::byte*>(out.raw_data()) + at, part.data(), part.size());
    at += part.size();
  }
  if (at != out.nbytes()) throw DistError("emb::dist gather: shards do not cover the table");
  return out;
}

}  // namespace

Tensor ShardedEmbeddingBagCollection::gather_table(std::size_t t) const {
  const EmbeddingBagConfig& c = configs_.at(t);
  return gather_rows_of(comm_, shards_[t], {c.num_embeddings(), c.embedding_dim()});
}

Tensor ShardedEmbeddingBagCollection::gather_state(std::size_t t, const std::string& key) const {
  const EmbeddingBagConfig& c = configs_.at(t);
  const auto it = states_[t].tensors.find(key);
  if (it == states_[t].tensors.end()) {
    throw ValueError("ShardedEmbeddingBagCollection::gather_state: " +
                     std::string(fused_optimizer_name(optimizer_)) + " keeps no state \"" + key +
                     "\"");
  }
  Shape whole = it->second.shape();
  whole[0] = c.num_embeddings();
  return gather_rows_of(comm_, it->second, whole);
}

std::int64_t ShardedEmbeddingBagCollection::step_count(std::size_t t) const {
  std::int64_t mine = end_.at(t) > begin_.at(t) || plans_[t].kind == ShardingPlan::Kind::kRowWise ||
                              plans_[t].owner == comm_.rank()
                          ? states_[t].step
                          : 0;
  std::vector<std::byte> bytes(sizeof mine);
  std::memcpy(bytes.data(), &mine, sizeof mine);
  std::int64_t best = 0;
  for (const auto& part : emb::dist::detail::all_gather(comm_, bytes)) {
    std::int64_t v;
    std::memcpy(&v, part.data(), sizeof v);
    best = std::max(best, v);
  }
  return best;
}

}  // namespace emb::dist
