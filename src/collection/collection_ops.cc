#include "collection/collection_ops.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <optional>
#include <utility>
#include <variant>

#include "bag_layout.h"
#include "emb/optim/lazy_adam.h"
#include "emb/optim/optimizer.h"
#include "emb/parameter.h"
#include "index_check.h"
#include "kernels/fast.h"
#include "kernels/optim_rows.h"
#include "kernels/parallel.h"
#include "kernels/ref/embedding_ref.h"
#include "optim/ops.h"
#include "row_groups.h"

namespace emb::detail {

namespace {

std::string str(std::int64_t v) {
  return std::to_string(v);
}

// Every (job, bag) pair as one index space: job j covers [first[j], first[j + 1]).
std::vector<std::int64_t> prefix_of(const std::vector<std::int64_t>& counts) {
  std::vector<std::int64_t> first(counts.size() + 1, 0);
  for (std::size_t j = 0; j < counts.size(); ++j) first[j + 1] = first[j] + counts[j];
  return first;
}

// The job holding flat item k.
std::size_t job_of(const std::vector<std::int64_t>& first, std::int64_t k) {
  return static_cast<std::size_t>(std::upper_bound(first.begin(), first.end(), k) -
                                  first.begin()) -
         1;
}

// Pools bags [b0, b1) of a job with the fast kernels (which then run on the calling thread:
// parallel_ranges starts no region inside one).
void pool_range(const PoolJob& job, std::int64_t b0, std::int64_t b1) {
  if (b1 <= b0) return;
  const std::int64_t dim = job.table.size(1);
  visit_floating(job.table.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* table = job.table.data<T>();
    T* out = static_cast<T*>(job.out) + b0 * dim;
    const std::int64_t* bounds = job.bounds + b0;
    const std::int64_t nb = b1 - b0;
    auto run = [&](const auto* ids) {
      if (job.mode == EmbeddingBagMode::kMax) {
        std::vector<std::int64_t> winners(static_cast<std::size_t>(nb * dim));
        fast::bag_max(table, dim, ids, bounds, nb, std::int64_t{-1}, out, winners.data());
      } else if (job.mode == EmbeddingBagMode::kMean) {
        fast::bag_mean(table, dim, ids, bounds, nb, std::int64_t{-1}, job.mean_sizes + b0, out);
      } else {
        fast::bag_sum(table, dim, ids, bounds, nb, std::int64_t{-1}, static_cast<const T*>(nullptr),
                      fast::PswCombine::kFused, out);
      }
    };
    if (job.ids64) {
      run(static_cast<const std::int64_t*>(job.ids));
    } else {
      run(static_cast<const std::int32_t*>(job.ids));
    }
  });
}

}  // namespace

std::vector<std::int64_t> bag_sizes(const std::vector<std::int64_t>& bounds) {
  std::vector<std::int64_t> sizes(bounds.empty() ? 0 : bounds.size() - 1);
  for (std::size_t b = 0; b < sizes.size(); ++b) sizes[b] = bounds[b + 1] - bounds[b];
  return sizes;
}

std::vector<FeaturePlan> plan_batch(const char* op, const KeyedJaggedBatch& batch,
                                    const std::vector<EmbeddingBagConfig>& tables) {
  const std::string o = op;
  if (batch.keys.size() != batch.ids.size() || batch.keys.size() != batch.offsets.size()) {
    throw ValueError(o + ": the batch has " + str(static_cast<std::int64_t>(batch.keys.size())) +
                     " keys, " + str(static_cast<std::int64_t>(batch.ids.size())) + " ids and " +
                     str(static_cast<std::int64_t>(batch.offsets.size())) +
                     " offsets (one of each per feature)");
  }
  if (batch.keys.size() != tables.size()) {
    throw ValueError(o + ": the batch has " + str(static_cast<std::int64_t>(batch.keys.size())) +
                     " features, the collection " + str(static_cast<std::int64_t>(tables.size())) +
                     " tables (one feature per table, in table order)");
  }
  std::vector<FeaturePlan> plans;
  plans.reserve(tables.size());
  for (std::size_t t = 0; t < tables.size(); ++t) {
    if (batch.keys[t] != tables[t].name()) {
      throw ValueError(o + ": feature " + str(static_cast<std::int64_t>(t)) + " has key \"" +
                       batch.keys[t] + "\", expected \"" + tables[t].name() +
                       "\" (the table names, in order)");
    }
    const std::string what = o + " (table \"" + tables[t].name() + "\")";
    if (!batch.offsets[t].defined() || batch.ids[t].dim() != 1) {
      throw ValueError(what + ": ids must be 1-D with 1-D offsets, got ids of shape " +
                       (batch.ids[t].defined() ? shape_to_string(batch.ids[t].shape())
                                               : std::string("undefined")) +
                       (batch.offsets[t].defined() ? "" : " and no offsets"));
    }
    EmbeddingBagFuncOptions options;
    options.mode(tables[t].mode());
    BagLayout layout = plan_bag_layout(what.c_str(), batch.ids[t], batch.offsets[t],
                                       tables[t].num_embeddings(), options, Tensor(),
                                       tables[t].dtype());
    plans.push_back({layout.ids, std::move(layout.bounds)});
  }
  return plans;
}

void check_grad_outputs(const char* op, const std::vector<Tensor>& grad_outputs,
                        const std::vector<FeaturePlan>& plans,
                        const std::vector<EmbeddingBagConfig>& tables) {
  if (grad_outputs.size() != tables.size()) {
    throw ValueError(std::string(op) + ": got " +
                     str(static_cast<std::int64_t>(grad_outputs.size())) + " grad_outputs for " +
                     str(static_cast<std::int64_t>(tables.size())) + " tables");
  }
  for (std::size_t t = 0; t < tables.size(); ++t) {
    const Tensor& g = grad_outputs[t];
    const Shape want{plans[t].num_bags(), tables[t].embedding_dim()};
    if (!g.defined() || g.dtype() != tables[t].dtype() || g.shape() != want) {
      throw ValueError(std::string(op) + ": grad_outputs[" + str(static_cast<std::int64_t>(t)) +
                       "] (table \"" + tables[t].name() + "\") is " +
                       (g.defined() ? std::string(dtype_name(g.dtype())) + " " +
                                          shape_to_string(g.shape())
                                    : std::string("undefined")) +
                       ", expected " + std::string(dtype_name(tables[t].dtype())) + " " +
                       shape_to_string(want));
    }
  }
}

void pool_all(const std::vector<PoolJob>& jobs) {
  std::vector<std::int64_t> counts(jobs.size());
  std::int64_t work = 0;
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    counts[j] = jobs[j].table.size(1) == 0 ? 0 : jobs[j].num_bags;
    work += (jobs[j].bounds[jobs[j].num_bags] + jobs[j].num_bags) * jobs[j].table.size(1);
  }
  const std::vector<std::int64_t> first = prefix_of(counts);
  const std::int64_t total = first.back();
  if (total == 0) return;
  parallel_ranges(total, work, [&](std::int64_t begin, std::int64_t end, int, int) {
    std::size_t j = job_of(first, begin);
    for (std::int64_t k = begin; k < end; ++j) {
      const std::int64_t stop = std::min(end, first[j + 1]);
      pool_range(jobs[j], k - first[j], stop - first[j]);
      k = stop;
    }
  });
}

void check_fused_optimizer(const FusedOptimizerOptions& options, const char* op) {
  const std::string o = op;
  // The optimizer's own constructor checks the values (same messages), over a dummy parameter.
  Parameter dummy(Tensor::zeros({1, 1}, DType::kFloat32));
  try {
    std::visit(
        [&](const auto& opts) {
          using O = std::decay_t<decltype(opts)>;
          if constexpr (std::is_same_v<O, emb::optim::SGDOptions>) {
            emb::optim::SGD check({&dummy}, opts);
          } else if constexpr (std::is_same_v<O, emb::optim::AdagradOptions>) {
            emb::optim::Adagrad check({&dummy}, opts);
          } else if constexpr (std::is_same_v<O, emb::optim::RowWiseAdagradOptions>) {
            emb::optim::RowWiseAdagrad check({&dummy}, opts);
          } else if constexpr (std::is_same_v<O, emb::optim::AdamOptions>) {
            emb::optim::LazyAdam check({&dummy}, opts);
          } else {
            emb::optim::LazyAdamW check({&dummy}, opts);
          }
        },
        options);
  } catch (const ValueError& e) {
    throw ValueError(o + ": " + e.what());
  }
  if (const auto* sgd = std::get_if<emb::optim::SGDOptions>(&options)) {
    if (sgd->momentum() != 0.0 || sgd->weight_decay() != 0.0) {
      throw ValueError(o + ": the fused SGD step takes no momentum and no weight_decay (PyTorch "
                           "refuses weight_decay with sparse gradients, and a momentum buffer "
                           "is dense); got momentum " + std::to_string(sgd->momentum()) +
                       ", weight_decay " + std::to_string(sgd->weight_decay()));
    }
  }
  if (const auto* ada = std::get_if<emb::optim::AdagradOptions>(&options)) {
    if (ada->weight_decay() != 0.0) {
      throw ValueError(o + ": Adagrad's weight_decay is not compatible with sparse gradients, got " +
                       std::to_string(ada->weight_decay()));
    }
  }
}

namespace {

std::optional<emb::optim::detail_adam::Config> adam_config_of(const FusedOptimizerOptions& o) {
  auto make = [](const auto& a, bool decoupled) {
    const auto [b1, b2] = a.betas();
    return emb::optim::detail_adam::Config{a.lr(), b1,           b2,        a.eps(), a.weight_decay(),
                                           a.amsgrad(), a.maximize(), decoupled, true};
  };
  if (const auto* a = std::get_if<emb::optim::AdamOptions>(&o)) return make(*a, false);
  if (const auto* a = std::get_if<emb::optim::AdamWOptions>(&o)) return make(*a, true);
  return std::nullopt;
}

}  // namespace

FusedTableState initial_state(const FusedOptimizerOptions& options, std::int64_t rows,
                              std::int64_t dim, DType dtype) {
  FusedTableState s;
  if (const auto* ada = std::get_if<emb::optim::AdagradOptions>(&options)) {
    s.tensors["sum"] = Tensor::full({rows, dim}, ada->initial_accumulator_value(), dtype);
  } else if (const auto* rw = std::get_if<emb::optim::RowWiseAdagradOptions>(&options)) {
    s.tensors["sum"] = Tensor::full({rows}, rw->initial_accumulator_value(), dtype);
  } else if (const auto c = adam_config_of(options)) {
    s.tensors["exp_avg"] = Tensor::zeros({rows, dim}, dtype);
    s.tensors["exp_avg_sq"] = Tensor::zeros({rows, dim}, dtype);
    if (c->amsgrad) s.tensors["max_exp_avg_sq"] = Tensor::zeros({rows, dim}, dtype);
  }
  return s;
}

void check_trainable(const Tensor& weight, const FusedTableState& state, const char* op,
                     const std::string& table) {
  const std::string what = std::string(op) + " (table \"" + table + "\")";
  if (weight.dtype() != DType::kFloat32 && weight.dtype() != DType::kFloat64) {
    throw ValueError(what + ": the optimizers train float32 or float64 tables, got " +
                     std::string(dtype_name(weight.dtype())));
  }
  weight.check_writable(what.c_str());
  if (state.step >= emb::optim::Optimizer::kMaxStep) {
    throw ValueError(what + ": the step count " + str(state.step) + " cannot grow past 2^53");
  }
}

Tensor mean_bag_scale(const std::vector<std::int64_t>& sizes, DType dtype) {
  Tensor out = Tensor::zeros({static_cast<std::int64_t>(sizes.size())}, dtype);
  visit_floating(dtype, [&](auto tag) {
    using T = decltype(tag);
    using A = ref::acc_t<T>;
    T* s = out.data<T>();
    for (std::size_t b = 0; b < sizes.size(); ++b) {
      if (sizes[b] > 0) s[b] = T(A(1) / A(T(static_cast<A>(sizes[b]))));
    }
  });
  return out;
}

namespace {

namespace ops = emb::detail::optim;

// One job's gradient as the optimizer row kernels take it (kernels/optim_rows.h): its positions
// grouped by row (row_groups.h), in input order within a row; entry e reads grad row src[e],
// times scale[e] = bag_scale[src[e]] when the job has a bag scale.
struct JobRows {
  RowGroups groups;
  std::vector<std::int64_t> src;
  Tensor scale;  // [entries] of the weight's dtype, or undefined
};

JobRows group_job(const UpdateJob& job) {
  JobRows g;
  g.groups = group_by_row(job.rows, job.n, job.weight.size(0), -1);
  g.src.resize(g.groups.positions.size());
  for (std::size_t e = 0; e < g.src.size(); ++e) g.src[e] = job.src[g.groups.positions[e]];
  if (job.bag_scale != nullptr) {
    g.scale = Tensor::empty({static_cast<std::int64_t>(g.src.size())}, job.weight.dtype());
    ops::visit_param_dtype(job.weight.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* bag = static_cast<const T*>(job.bag_scale);
      T* sc = g.scale.data<T>();
      for (std::size_t e = 0; e < g.src.size(); ++e) sc[e] = bag[g.src[e]];
    });
  }
  return g;
}

// Groups [g0, g1) of a job's rows: the grad rows read are unbounded (src), so num_sources is
// the count of all of them.
SparseRows sub_rows(const UpdateJob& job, const JobRows& g, std::int64_t g0, std::int64_t g1,
                    std::int64_t num_sources, bool maximize) {
  return {job.weight.dtype(),
          job.weight.size(1),
          job.grad,
          num_sources,
          g1 - g0,
          g.groups.rows.data() + g0,
          g.groups.starts.data() + g0,
          g.src.data(),
          g.scale.defined() ? g.scale.raw_data() : nullptr,
          false,
          maximize};
}

void* state_of(const UpdateJob& job, const char* key) {
  const auto it = job.state->tensors.find(key);
  return it == job.state->tensors.end() ? nullptr : it->second.raw_data();
}

// Applies the optimizer of `options` to the rows of one job (or a range of its groups), with
// the job's step count: the row kernels the emb optimizers' own sparse steps use.
void step_rows(const FusedOptimizerOptions& options, const UpdateJob& job, const JobRows& g,
               std::int64_t g0, std::int64_t g1, std::int64_t num_sources) {
  void* w = job.weight.raw_data();
  if (const auto* sgd = std::get_if<emb::optim::SGDOptions>(&options)) {
    fast::sgd_rows(sub_rows(job, g, g0, g1, num_sources, sgd->maximize()), {sgd->lr()}, w);
  } else if (const auto* ada = std::get_if<emb::optim::AdagradOptions>(&options)) {
    const double clr =
        ada->lr() / (1 + static_cast<double>(job.state->step - 1) * ada->lr_decay());
    fast::adagrad_rows(sub_rows(job, g, g0, g1, num_sources, ada->maximize()), {clr, ada->eps()},
                       w, state_of(job, "sum"));
  } else if (const auto* rw = std::get_if<emb::optim::RowWiseAdagradOptions>(&options)) {
    fast::rowwise_adagrad_rows(sub_rows(job, g, g0, g1, num_sources, rw->maximize()),
                               {rw->lr(), rw->eps(), rw->weight_decay()}, w,
                               state_of(job, "sum"));
  } else {
    const emb::optim::detail_adam::Config c = *adam_config_of(options);
    // The coalesced gradient is negated when maximize; the element update is not.
    fast::adam_rows(sub_rows(job, g, g0, g1, num_sources, c.maximize),
                    ops::adam_hyper(c, job.state->step), w, state_of(job, "exp_avg"),
                    state_of(job, "exp_avg_sq"), state_of(job, "max_exp_avg_sq"));
  }
}

}  // namespace

void fused_update(const FusedOptimizerOptions& options, const std::vector<UpdateJob>& jobs) {
  for (const UpdateJob& job : jobs) ++job.state->step;
  std::vector<JobRows> groups(jobs.size());
  std::int64_t positions = 0;
  for (const UpdateJob& job : jobs) positions += job.n;
  parallel_ranges(static_cast<std::int64_t>(jobs.size()), positions * 16,
                  [&](std::int64_t begin, std::int64_t end, int, int) {
                    for (std::int64_t j = begin; j < end; ++j) {
                      groups[static_cast<std::size_t>(j)] =
                          group_job(jobs[static_cast<std::size_t>(j)]);
                    }
                  });
  // The grad rows each job reads: 1 + the largest src.
  std::vector<std::int64_t> sources(jobs.size(), 0);
  std::vector<std::int64_t> counts(jobs.size());
  std::int64_t work = 0;
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    for (std::int64_t k = 0; k < jobs[j].n; ++k) sources[j] = std::max(sources[j], jobs[j].src[k] + 1);
    counts[j] = jobs[j].weight.size(1) == 0
                    ? 0
                    : static_cast<std::int64_t>(groups[j].groups.rows.size());
    work += jobs[j].n * jobs[j].weight.size(1) * 4;
  }
  // One parallel pass over every (job, row) pair: a thread's range may span several jobs, and
  // the row kernels run on the calling thread inside it (distinct rows, so the result does not
  // depend on how the groups are split).
  const std::vector<std::int64_t> first = prefix_of(counts);
  if (first.back() == 0) return;
  parallel_ranges(first.back(), work, [&](std::int64_t begin, std::int64_t end, int, int) {
    std::size_t j = job_of(first, begin);
    for (std::int64_t k = begin; k < end; ++j) {
      const std::int64_t stop = std::min(end, first[j + 1]);
      if (stop > k) {
        step_rows(options, jobs[j], groups[j], k - first[j], stop - first[j], sources[j]);
      }
      k = stop;
    }
  });
}

}  // namespace emb::detail
