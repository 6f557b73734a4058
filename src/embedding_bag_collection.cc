// EmbeddingBagCollection: validation of every table first, then one pass of the thread pool
// over every (table, bag) pair (forward) or every (table, row) pair (the fused update); the
// arithmetic is the ordinary kernels' and optimizers' (collection/collection_ops.h).
#include "emb/embedding_bag_collection.h"

#include <set>
#include <string>
#include <utility>

#include "collection/collection_ops.h"
#include "index_check.h"
#include "sparse_grad_access.h"

namespace emb {

namespace {

std::string str(std::int64_t v) {
  return std::to_string(v);
}

}  // namespace

void detail::check_configs(const std::vector<EmbeddingBagConfig>& tables, const char* op) {
  const std::string o = op;
  if (tables.empty()) throw ValueError(o + ": needs at least one table");
  std::set<std::string> names;
  for (std::size_t t = 0; t < tables.size(); ++t) {
    const EmbeddingBagConfig& c = tables[t];
    const std::string what = o + ": table " + str(static_cast<std::int64_t>(t));
    if (c.name().empty()) throw ValueError(what + " has an empty name");
    if (!names.insert(c.name()).second) {
      throw ValueError(what + ": the name \"" + c.name() + "\" is used twice");
    }
    if (c.num_embeddings() < 0 || c.embedding_dim() < 0) {
      throw ValueError(what + " (\"" + c.name() + "\"): sizes must be non-negative, got [" +
                       str(c.num_embeddings()) + ", " + str(c.embedding_dim()) + "]");
    }
    checked_numel({c.num_embeddings(), c.embedding_dim()}, op);
    detail::check_bag_mode(c.mode(), op);
    if (!is_valid_dtype(c.dtype()) || !is_floating(c.dtype())) {
      throw ValueError(what + " (\"" + c.name() +
                       "\"): dtype must be float32, float64, float16 or bfloat16");
    }
    if (c.weight().defined() &&
        (c.weight().dtype() != c.dtype() ||
         c.weight().shape() != Shape{c.num_embeddings(), c.embedding_dim()})) {
      throw ValueError(what + " (\"" + c.name() + "\"): the given weight is " +
                       std::string(dtype_name(c.weight().dtype())) + " " +
                       shape_to_string(c.weight().shape()) + ", expected " +
                       std::string(dtype_name(c.dtype())) + " [" + str(c.num_embeddings()) +
                       ", " + str(c.embedding_dim()) + "]");
    }
  }
}


const char* fused_optimizer_name(const FusedOptimizerOptions& options) {
  switch (options.index()) {
    case 0:
      return "SGD";
    case 1:
      return "Adagrad";
    case 2:
      return "RowWiseAdagrad";
    case 3:
      return "LazyAdam";
    default:
      return "LazyAdamW";
  }
}

EmbeddingBagCollection::EmbeddingBagCollection(std::vector<EmbeddingBagConfig> tables,
                                               FusedOptimizerOptions optimizer,
                                               Generator& generator)
    : configs_(std::move(tables)), optimizer_(std::move(optimizer)) {
  const char* op = "EmbeddingBagCollection";
  detail::check_configs(configs_, op);
  detail::check_fused_optimizer(optimizer_, op);
  for (EmbeddingBagConfig& c : configs_) {
    Tensor w = c.weight();
    if (!w.defined()) {
      // As EmbeddingBag draws its table (float32, N(0, 1)), then in the table's dtype.
      Tensor f = Tensor::empty({c.num_embeddings(), c.embedding_dim()}, DType::kFloat32);
      generator.normal_(f);
      w = c.dtype() == DType::kFloat32 ? f : f.to(c.dtype());
    }
    weights_.push_back(w);
    states_.push_back(
        detail::initial_state(optimizer_, c.num_embeddings(), c.embedding_dim(), c.dtype()));
    c.weight(Tensor());  // the collection holds the table; the config keeps no second handle
  }
}

std::vector<Tensor> EmbeddingBagCollection::forward(const KeyedJaggedBatch& batch) const {
  const std::vector<detail::FeaturePlan> plans =
      detail::plan_batch("EmbeddingBagCollection::forward", batch, configs_);
  std::vector<Tensor> out;
  std::vector<std::vector<std::int64_t>> sizes(configs_.size());
  std::vector<detail::PoolJob> jobs;
  for (std::size_t t = 0; t < configs_.size(); ++t) {
    const detail::FeaturePlan& p = plans[t];
    out.push_back(Tensor::empty({p.num_bags(), configs_[t].embedding_dim()}, configs_[t].dtype()));
    if (configs_[t].mode() == EmbeddingBagMode::kMean) sizes[t] = detail::bag_sizes(p.bounds);
    jobs.push_back({weights_[t], configs_[t].mode(), p.ids.raw_data(),
                    p.ids.dtype() == DType::kInt64, p.bounds.data(), p.num_bags(),
                    sizes[t].empty() ? nullptr : sizes[t].data(), out.back().raw_data()});
  }
  detail::pool_all(jobs);
  return out;
}

std::vector<SparseGrad> EmbeddingBagCollection::backward(
    const KeyedJaggedBatch& batch, const std::vector<Tensor>& grad_outputs) const {
  const char* op = "EmbeddingBagCollection::backward";
  const std::vector<detail::FeaturePlan> plans = detail::plan_batch(op, batch, configs_);
  detail::check_grad_outputs(op, grad_outputs, plans, configs_);
  std::vector<SparseGrad> grads;
  for (std::size_t t = 0; t < configs_.size(); ++t) {
    if (configs_[t].mode() == EmbeddingBagMode::kMax) {
      throw NotImplementedError(std::string(op) + " (table \"" + configs_[t].name() +
                                "\"): mode max has no sparse gradient");
    }
  }
  for (std::size_t t = 0; t < configs_.size(); ++t) {
    EmbeddingBagFuncOptions options;
    options.mode(configs_[t].mode()).sparse(true);
    grads.push_back(embedding_bag_sparse_backward(grad_outputs[t], batch.ids[t], batch.offsets[t],
                                                  configs_[t].num_embeddings(), options));
  }
  return grads;
}

void EmbeddingBagCollection::step(const std::vector<SparseGrad>& grads) {
  const char* op = "EmbeddingBagCollection::step";
  if (grads.size() != configs_.size()) {
    throw ValueError(std::string(op) + ": got " + str(static_cast<std::int64_t>(grads.size())) +
                     " gradients for " + str(static_cast<std::int64_t>(configs_.size())) +
                     " tables");
  }
  for (std::size_t t = 0; t < configs_.size(); ++t) {
    const SparseGrad& g = grads[t];
    const EmbeddingBagConfig& c = configs_[t];
    if (g.num_rows() != c.num_embeddings() || g.dim() != c.embedding_dim() ||
        g.dtype() != c.dtype()) {
      throw ValueError(std::string(op) + ": gradient " + str(static_cast<std::int64_t>(t)) +
                       " is of a [" + str(g.num_rows()) + ", " + str(g.dim()) + "] " +
                       std::string(dtype_name(g.dtype())) + " table, table \"" + c.name() + "\" is [" +
                       str(c.num_embeddings()) + ", " + str(c.embedding_dim()) + "] " +
                       std::string(dtype_name(c.dtype())));
    }
    detail::check_trainable(weights_[t], states_[t], op, c.name());
  }
  std::vector<std::vector<std::int64_t>> src(configs_.size());
  std::vector<detail::UpdateJob> jobs;
  for (std::size_t t = 0; t < configs_.size(); ++t) {
    const SparseGrad& g = grads[t];
    src[t].resize(static_cast<std::size_t>(g.nnz()));
    for (std::int64_t j = 0; j < g.nnz(); ++j) src[t][static_cast<std::size_t>(j)] = j;
    jobs.push_back({weights_[t], &states_[t],
                    detail::SparseGradAccess::ids(g).data<std::int64_t>(), src[t].data(),
                    g.nnz(), g.values().raw_data(), nullptr});
  }
  detail::fused_update(optimizer_, jobs);
}

void EmbeddingBagCollection::backward_and_step(const KeyedJaggedBatch& batch,
                                               const std::vector<Tensor>& grad_outputs) {
  const char* op = "EmbeddingBagCollection::backward_and_step";
  const std::vector<detail::FeaturePlan> plans = detail::plan_batch(op, batch, configs_);
  detail::check_grad_outputs(op, grad_outputs, plans, configs_);
  for (std::size_t t = 0; t < configs_.size(); ++t) {
    if (configs_[t].mode() == EmbeddingBagMode::kMax) {
      throw NotImplementedError(std::string(op) + " (table \"" + configs_[t].name() +
                                "\"): mode max has no sparse gradient");
    }
    detail::check_trainable(weights_[t], states_[t], op, configs_[t].name());
  }
  // Position i of table t: row ids[i], value grad_outputs[t][bag(i)] (mode mean: times the
  // bag's scale).
  std::vector<std::vector<std::int64_t>> rows(configs_.size());
  std::vector<std::vector<std::int64_t>> src(configs_.size());
  std::vector<Tensor> scales(configs_.size());
  std::vector<detail::UpdateJob> jobs;
  for (std::size_t t = 0; t < configs_.size(); ++t) {
    const detail::FeaturePlan& p = plans[t];
    rows[t].resize(static_cast<std::size_t>(p.n()));
    src[t].resize(static_cast<std::size_t>(p.n()));
    detail::visit_ids(p.ids, [&](const auto* ids) {
      for (std::int64_t i = 0; i < p.n(); ++i) rows[t][static_cast<std::size_t>(i)] = ids[i];
    });
    for (std::int64_t b = 0; b < p.num_bags(); ++b) {
      for (std::int64_t i = p.bounds[b]; i < p.bounds[b + 1]; ++i) {
        src[t][static_cast<std::size_t>(i)] = b;
      }
    }
    if (configs_[t].mode() == EmbeddingBagMode::kMean) {
      scales[t] = detail::mean_bag_scale(detail::bag_sizes(p.bounds), configs_[t].dtype());
    }
    jobs.push_back({weights_[t], &states_[t], rows[t].data(), src[t].data(), p.n(),
                    grad_outputs[t].raw_data(),
                    scales[t].defined() ? scales[t].raw_data() : nullptr});
  }
  detail::fused_update(optimizer_, jobs);
}

}  // namespace emb
