// Structured fuzzing of the public API: the input bytes are decoded into a sequence of calls
// (tensor construction, views of caller memory, conversions, embedding / embedding_bag forward
// and backward, fused backward + optimizer steps, with random options, modules, parameters,
// sparse gradients, optimizers, state save / load, the generator) over a small world of objects
// that the calls share, so that ids can live inside tables, gradients meet the wrong optimizer, and
// so on. After every call:
// - it succeeded, or it threw an emb::Error whose message is complete (fuzz_common.h);
//   any other exception is a failure;
// - if it threw, every watched object is bit for bit as before the call: the caller's buffer,
//   every tensor of the pool, each module's weight and gradient, the free parameters and their
//   gradients, the sparse gradients, the optimizer's state, the generators.
// A broken promise aborts (libFuzzer keeps the input); the totals are printed at exit.
//
// Sizes stay small (tables of at most 8 x 6, tensors of at most 6^4 elements), except where the
// point is that a size must not matter: a sparse backward over a 2^40-row table, shapes such
// as [0, 2^62] (no elements), a state file that claims huge tensors.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "emb/emb.h"
#include "fuzz_common.h"
#include "optimizers.h"

namespace {

using namespace emb;
using emb::fuzz::fail;

constexpr const char* kTarget = "api_fuzz";
constexpr std::size_t kPool = 8;
constexpr std::size_t kBuffer = 1024;
constexpr int kMaxCalls = 48;
constexpr std::int64_t kHuge = std::int64_t{1} << 62;  // only ever beside a 0, or refused

struct Totals {
  std::uint64_t calls = 0, threw = 0, modified_after_throw = 0;
  ~Totals() {
    std::fprintf(stderr,
                 "api_fuzz: %llu calls, %llu threw an emb::Error, %llu modified after throw\n",
                 static_cast<unsigned long long>(calls), static_cast<unsigned long long>(threw),
                 static_cast<unsigned long long>(modified_after_throw));
  }
} totals;

// A gradient as it can be compared: dense bytes, or the sparse rows.
struct GradState {
  bool has = false, sparse = false;
  Tensor dense, ids, values;
  std::int64_t rows = 0;
  static GradState of(const Parameter& p) {
    GradState g;
    g.has = p.has_grad();
    g.sparse = p.grad_is_sparse();
    if (g.has && g.sparse) {
      g.ids = p.sparse_grad().indices();
      g.values = p.sparse_grad().values().clone();
      g.rows = p.sparse_grad().num_rows();
    } else if (g.has) {
      g.dense = p.grad().clone();
    }
    return g;
  }
  bool operator==(const GradState& o) const {
    return has == o.has && sparse == o.sparse && dense.equal(o.dense) && ids.equal(o.ids) &&
           values.equal(o.values) && rows == o.rows;
  }
};

struct ParamState {
  Tensor data;
  bool requires_grad = false;
  GradState grad;
  static ParamState of(const Parameter& p) {
    return {p.data().defined() ? p.data().clone() : Tensor(), p.requires_grad(), GradState::of(p)};
  }
  bool operator==(const ParamState& o) const {
    return data.equal(o.data) && requires_grad == o.requires_grad && grad == o.grad;
  }
};

bool same_generator(Generator a, Generator b) {
  for (int k = 0; k < 3; ++k) {
    if (a.next_u64() != b.next_u64()) return false;
    const double x = a.normal(), y = b.normal();
    if (std::memcmp(&x, &y, sizeof x) != 0) return false;
  }
  return a.seed() == b.seed();
}

struct World {
  alignas(64) unsigned char buffer[kBuffer] = {};  // the caller's memory that views point into
  std::vector<Tensor> pool;
  std::array<std::optional<SparseGrad>, 2> sparse;
  std::optional<Embedding> table;
  std::optional<EmbeddingBag> bag;
  Parameter free[2];
  std::unique_ptr<optim::Optimizer> opt;
  bool opt_uses_modules = false;
  Generator gen{1234};
  std::string saved_state;

  World() {
    free[0] = fuzz::fuzz_table(DType::kFloat32);
    free[1] = fuzz::fuzz_bias(DType::kFloat32);
    for (std::size_t i = 0; i < kBuffer; ++i) buffer[i] = static_cast<unsigned char>(i * 7 + 1);
  }
};

struct Snapshot {
  std::string buffer;
  std::vector<Tensor> pool;
  std::array<std::optional<std::pair<Tensor, Tensor>>, 2> sparse;
  std::optional<ParamState> table, bag;
  ParamState free[2];
  std::string opt_state;
  Generator gen, default_gen;

  static Snapshot of(const World& w) {
    Snapshot s;
    s.buffer.assign(reinterpret_cast<const char*>(w.buffer), kBuffer);
    for (const Tensor& t : w.pool) s.pool.push_back(t.defined() ? t.clone() : Tensor());
    for (std::size_t i = 0; i < 2; ++i) {
      if (w.sparse[i]) s.sparse[i] = {w.sparse[i]->indices(), w.sparse[i]->values().clone()};
    }
    if (w.table) s.table = ParamState::of(w.table->parameter());
    if (w.bag) s.bag = ParamState::of(w.bag->parameter());
    for (int i = 0; i < 2; ++i) s.free[i] = ParamState::of(w.free[i]);
    if (w.opt) {
      std::ostringstream out;
      w.opt->save(out);
      s.opt_state = out.str();
    }
    s.gen = w.gen;
    s.default_gen = default_generator();
    return s;
  }

  // The first difference from the world, or "" when there is none.
  std::string diff(const World& w) const {
    if (std::memcmp(buffer.data(), w.buffer, kBuffer) != 0) return "the caller's buffer";
    if (pool.size() != w.pool.size()) return "the tensor pool";
    for (std::size_t i = 0; i < pool.size(); ++i) {
      if (!pool[i].equal(w.pool[i])) return "pool tensor " + std::to_string(i);
    }
    for (std::size_t i = 0; i < 2; ++i) {
      if (sparse[i].has_value() != w.sparse[i].has_value()) return "a sparse gradient slot";
      if (sparse[i] && (!sparse[i]->first.equal(w.sparse[i]->indices()) ||
                        !sparse[i]->second.equal(w.sparse[i]->values()))) {
        return "sparse gradient " + std::to_string(i);
      }
    }
    if (table.has_value() != w.table.has_value() ||
        (table && !(*table == ParamState::of(w.table->parameter())))) {
      return "the Embedding's weight or gradient";
    }
    if (bag.has_value() != w.bag.has_value() ||
        (bag && !(*bag == ParamState::of(w.bag->parameter())))) {
      return "the EmbeddingBag's weight or gradient";
    }
    for (int i = 0; i < 2; ++i) {
      if (!(free[i] == ParamState::of(w.free[i]))) return "parameter " + std::to_string(i);
    }
    if (w.opt) {
      std::ostringstream out;
      w.opt->save(out);
      if (out.str() != opt_state) return "the optimizer's state";
    }
    if (!same_generator(gen, w.gen)) return "the generator";
    if (!same_generator(default_gen, default_generator())) return "the default generator";
    return "";
  }
};

// Decodes values from the input.
class Decoder {
 public:
  explicit Decoder(FuzzedDataProvider& in) : in_(in) {}
  bool done() const { return in_.remaining_bytes() == 0; }
  int pick(int n) { return in_.ConsumeIntegralInRange<int>(0, n - 1); }
  bool flag() { return in_.ConsumeBool(); }

  DType dtype() {  // 6 and 7 name no DType
    return static_cast<DType>(in_.ConsumeIntegralInRange<std::uint8_t>(0, 7));
  }
  DType float_dtype() {
    return std::array{DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16}[pick(4)];
  }
  std::int64_t size() {  // a table or tensor size, small or hostile
    static constexpr std::int64_t kSizes[] = {0, 1, 2, 3, 4, 5, 6, -1, kHuge};
    return in_.PickValueInArray(kSizes);
  }
  std::int64_t small_size() { return in_.ConsumeIntegralInRange<std::int64_t>(0, 6); }
  std::int64_t id() {  // mostly valid for a table of up to 8 rows
    if (pick(8) == 0) {
      static constexpr std::int64_t kOdd[] = {-1,
                                              -9,
                                              8,
                                              9,
                                              100,
                                              std::numeric_limits<std::int64_t>::min(),
                                              std::numeric_limits<std::int64_t>::max(),
                                              kHuge};
      return in_.PickValueInArray(kOdd);
    }
    return in_.ConsumeIntegralInRange<std::int64_t>(0, 7);
  }
  double value() {
    static constexpr double kValues[] = {0.0,
                                         -0.0,
                                         1.0,
                                         -1.0,
                                         0.5,
                                         2.0,
                                         3.0,
                                         1e-3,
                                         1e30,
                                         -1e30,
                                         1e300,
                                         4e9,
                                         -3e9,
                                         65504.0,
                                         std::numeric_limits<double>::quiet_NaN(),
                                         std::numeric_limits<double>::infinity(),
                                         -std::numeric_limits<double>::infinity()};
    if (flag()) return in_.PickValueInArray(kValues);
    return in_.ConsumeFloatingPointInRange<double>(-8.0, 8.0);
  }
  Shape shape(bool hostile) {
    Shape s(static_cast<std::size_t>(pick(5)));
    for (auto& d : s) d = hostile ? size() : small_size();
    return s;
  }
  std::optional<std::int64_t> padding_idx() {
    if (flag()) return std::nullopt;
    return in_.ConsumeIntegralInRange<std::int64_t>(-9, 9);
  }
  std::optional<double> max_norm() {
    if (pick(3) != 0) return std::nullopt;
    return value();
  }
  double norm_type() {
    static constexpr double kTypes[] = {2.0,
                                        1.0,
                                        0.0,
                                        3.0,
                                        0.5,
                                        -1.0,
                                        std::numeric_limits<double>::infinity(),
                                        -std::numeric_limits<double>::infinity()};
    return in_.PickValueInArray(kTypes);
  }
  std::string bytes(std::size_t max) { return in_.ConsumeRandomLengthString(max); }

 private:
  FuzzedDataProvider& in_;
};

template <typename Options>
Options lookup_options(Decoder& d, Options o) {
  o.padding_idx(d.padding_idx()).max_norm(d.max_norm()).norm_type(d.norm_type());
  return o.scale_grad_by_freq(d.flag()).sparse(d.flag());
}

template <typename Options>
Options bag_options(Decoder& d, Options o) {
  o = lookup_options(d, o);
  return o.mode(static_cast<EmbeddingBagMode>(d.pick(4))).include_last_offset(d.flag());  // 3: none
}

class Fuzzer {
 public:
  explicit Fuzzer(Decoder& d) : d_(d) {}

  void run() {
    for (int k = 0; k < kMaxCalls && !d_.done(); ++k) call(d_.pick(24));
  }

 private:
  Tensor pick_tensor() {  // a pool tensor, or an undefined one
    const int i = d_.pick(static_cast<int>(w_.pool.size()) + 1);
    return i < static_cast<int>(w_.pool.size()) ? w_.pool[static_cast<std::size_t>(i)] : Tensor();
  }
  void keep(Tensor t) {
    if (w_.pool.size() < kPool)
      w_.pool.push_back(std::move(t));
    else
      w_.pool[static_cast<std::size_t>(d_.pick(kPool))] = std::move(t);
  }
  Parameter* pick_param() {
    switch (d_.pick(4)) {
      case 0:
        return &w_.free[0];
      case 1:
        return &w_.free[1];
      case 2:
        return w_.table ? &w_.table->parameter() : &w_.free[0];
      default:
        return w_.bag ? &w_.bag->parameter() : &w_.free[1];
    }
  }
  std::optional<SparseGrad>& pick_sparse() {
    return w_.sparse[static_cast<std::size_t>(d_.pick(2))];
  }

  template <typename T>
  Tensor from_values(const Shape& shape) {
    const std::int64_t n = d_.pick(4) == 0 ? d_.pick(40) : [&] {
      std::int64_t m = 1;
      for (std::int64_t x : shape) m = (x < 0 || x > 64) ? 3 : m * x;
      return m;
    }();
    std::vector<T> values;
    for (std::int64_t i = 0; i < n; ++i) {
      if constexpr (std::is_integral_v<T>)
        values.push_back(static_cast<T>(d_.id()));
      else
        values.push_back(static_cast<T>(d_.value()));
    }
    return Tensor::from_vector<T>(values, shape);
  }

  // One public call, chosen by op; the checks around it are in call().
  void act(int op) {
    switch (op) {
      case 0: {  // a tensor from values (the count may not fill the shape)
        const Shape s = d_.shape(d_.pick(4) == 0);
        switch (d_.pick(4)) {
          case 0:
            keep(from_values<float>(s));
            break;
          case 1:
            keep(from_values<double>(s));
            break;
          case 2:
            keep(from_values<std::int32_t>(s));
            break;
          default:
            keep(from_values<std::int64_t>(s));
        }
        return;
      }
      case 1: {  // full / zeros (value and dtype may not fit)
        const Shape s = d_.shape(false);
        keep(d_.flag() ? Tensor::zeros(s, d_.dtype()) : Tensor::full(s, d_.value(), d_.dtype()));
        return;
      }
      case 2: {  // a view of the caller's buffer, at any byte offset (alignment is checked)
        const std::size_t offset = static_cast<std::size_t>(d_.pick(64));
        const Shape s = d_.shape(d_.pick(6) == 0);
        const DType dt = d_.dtype();
        const bool fits = is_valid_dtype(dt) && [&] {
          std::int64_t n = 1;
          for (std::int64_t x : s) {
            if (x == 0) return true;
            if (x < 0 || x > 64) return true;  // refused by the shape check
            n *= x;
          }
          return offset + static_cast<std::size_t>(n) * element_size(dt) <= kBuffer;
        }();
        if (!fits && is_valid_dtype(dt)) return;
        keep(Tensor::view(w_.buffer + offset, s, dt));
        return;
      }
      case 3: {  // conversions and reshapes of a pool tensor
        const Tensor t = pick_tensor();
        switch (d_.pick(4)) {
          case 0:
            keep(t.to(d_.dtype()));
            break;
          case 1:
            keep(t.reshape(d_.shape(d_.pick(4) == 0)));
            break;
          case 2:
            keep(t.select(d_.id()));
            break;
          default:
            keep(t.clone());
        }
        return;
      }
      case 4: {  // in-place writes to a pool tensor
        const Tensor t = pick_tensor();
        switch (d_.pick(3)) {
          case 0:
            t.copy_(pick_tensor());
            break;
          case 1:
            t.fill_(d_.value());
            break;
          default:
            t.set_double(d_.id(), d_.value());
        }
        return;
      }
      case 5: {  // reads
        const Tensor t = pick_tensor();
        if (t.to_string().empty()) fail(kTarget, "empty printing");
        (void)t.equal(pick_tensor());
        (void)t.get_double(d_.id());
        return;
      }
      case 6: {
        const Tensor input = pick_tensor();
        const Tensor weight = d_.flag() && w_.table ? w_.table->weight() : pick_tensor();
        keep(embedding(input, weight, lookup_options(d_, EmbeddingFuncOptions())));
        return;
      }
      case 7: {
        const Tensor weight = pick_tensor();
        embedding_renorm_(weight, pick_tensor(), d_.value(), d_.norm_type());
        return;
      }
      case 8: {  // functional backward of a lookup; a sparse one over any number of rows
        const Tensor grad = pick_tensor();
        const Tensor ids = pick_tensor();
        const auto pad = d_.padding_idx();
        const bool sgf = d_.flag();
        if (d_.flag()) {
          const std::int64_t rows = d_.flag() ? d_.pick(9) : (std::int64_t{1} << 40);
          pick_sparse() = embedding_sparse_backward(grad, ids, rows, pad, sgf);
        } else {
          keep(embedding_dense_backward(grad, ids, d_.pick(9) - 1, pad, sgf));
        }
        return;
      }
      case 9: {
        const Tensor input = pick_tensor();
        const Tensor weight = d_.flag() && w_.bag ? w_.bag->weight() : pick_tensor();
        const Tensor offsets = pick_tensor();
        const auto options = bag_options(d_, EmbeddingBagFuncOptions());
        const EmbeddingBagResult r =
            embedding_bag_forward(input, weight, offsets, options, pick_tensor());
        keep(r.output);
        if (r.max_indices.defined()) keep(r.max_indices);
        return;
      }
      case 10: {  // functional backward of a bag
        const Tensor grad = pick_tensor();
        const Tensor input = pick_tensor();
        const Tensor offsets = pick_tensor();
        const auto options = bag_options(d_, EmbeddingBagFuncOptions());
        switch (d_.pick(3)) {
          case 0:
            keep(embedding_bag_dense_backward(grad, input, offsets, pick_tensor(), d_.pick(9) - 1,
                                              options, pick_tensor()));
            break;
          case 1: {
            const std::int64_t rows = d_.flag() ? d_.pick(9) : (std::int64_t{1} << 40);
            pick_sparse() =
                embedding_bag_sparse_backward(grad, input, offsets, rows, options, pick_tensor());
            break;
          }
          default:
            keep(embedding_bag_per_sample_weights_backward(grad, pick_tensor(), input, offsets,
                                                           options));
        }
        return;
      }
      case 11: {  // a new Embedding (replaces the old one only when it succeeds)
        std::optional<Embedding> m;
        if (d_.flag()) {
          auto o = lookup_options(d_, EmbeddingOptions(d_.size(), d_.size()));
          if (d_.pick(3) == 0) o._weight(pick_tensor());
          m.emplace(o, w_.gen);
        } else {
          m.emplace(Embedding::from_pretrained(
              pick_tensor(),
              lookup_options(d_, EmbeddingFromPretrainedOptions()).freeze(d_.flag())));
        }
        if (w_.opt_uses_modules) w_.opt.reset();
        w_.table = std::move(m);
        return;
      }
      case 12: {  // a new EmbeddingBag
        std::optional<EmbeddingBag> m;
        if (d_.flag()) {
          auto o = bag_options(d_, EmbeddingBagOptions(d_.size(), d_.size()));
          if (d_.pick(3) == 0) o._weight(pick_tensor());
          m.emplace(o, w_.gen);
        } else {
          m.emplace(EmbeddingBag::from_pretrained(
              pick_tensor(),
              bag_options(d_, EmbeddingBagFromPretrainedOptions()).freeze(d_.flag())));
        }
        if (w_.opt_uses_modules) w_.opt.reset();
        w_.bag = std::move(m);
        return;
      }
      case 13: {
        if (!w_.table) return;
        const Tensor input = pick_tensor();
        switch (d_.pick(3)) {
          case 0:
            keep(w_.table->forward(input));
            break;
          case 1:
            w_.table->backward(input, pick_tensor());
            break;
          default:  // the fused backward + step, with whatever optimizer there is
            if (w_.opt) w_.table->fused_backward_step(input, pick_tensor(), *w_.opt);
        }
        return;
      }
      case 14: {
        if (!w_.bag) return;
        const Tensor input = pick_tensor();
        const Tensor offsets = pick_tensor();
        switch (d_.pick(3)) {
          case 0:
            keep(w_.bag->forward(input, offsets, pick_tensor()));
            break;
          case 1: {
            const Tensor psw_grad = w_.bag->backward(input, offsets, pick_tensor(), pick_tensor());
            if (psw_grad.defined()) keep(psw_grad);
            break;
          }
          default:
            if (w_.opt) {
              const Tensor psw_grad = w_.bag->fused_backward_step(input, offsets, pick_tensor(),
                                                                  *w_.opt, pick_tensor());
              if (psw_grad.defined()) keep(psw_grad);
            }
        }
        return;
      }
      case 15: {  // reset_parameters, after a weight that may have been replaced
        if (d_.flag()) {
          if (w_.table) w_.table->reset_parameters(w_.gen);
        } else if (w_.bag) {
          w_.bag->reset_parameters(w_.gen);
        }
        return;
      }
      case 16: {  // gradients into a parameter
        Parameter* p = pick_param();
        switch (d_.pick(4)) {
          case 0:
            p->accumulate_grad(pick_tensor());
            break;
          case 1:
            p->accumulate_grad(pick_tensor().clone());
            break;
          case 2: {
            const auto& g = pick_sparse();
            if (g) p->accumulate_grad(*g);
            break;
          }
          default:
            p->zero_grad();
        }
        return;
      }
      case 17: {  // replace a parameter's tensor
        Parameter* p = pick_param();
        const Tensor t = pick_tensor();
        if (t.defined() || p == &w_.free[0] || p == &w_.free[1]) p->set_data(t);
        return;
      }
      case 18: {  // sparse gradients: construct (copies the caller's ids), coalesce, append
        auto& slot = pick_sparse();
        switch (d_.pick(4)) {
          case 0: {
            const std::int64_t rows = d_.flag() ? d_.id() : d_.pick(9);
            slot = SparseGrad(pick_tensor(), pick_tensor(), rows, d_.flag());
            break;
          }
          case 1:
            slot = SparseGrad(d_.size(), d_.size(), d_.dtype());
            break;
          case 2:
            if (slot) slot = slot->coalesce();
            break;
          default: {
            const auto& other = pick_sparse();
            if (slot && other) slot->append(*other);
          }
        }
        if (slot && d_.flag() && slot->num_rows() <= 64 && slot->dim() <= 64)
          keep(slot->to_dense());
        return;
      }
      case 19: {  // a new optimizer over some parameters (hyper-parameters may be invalid)
        std::vector<Parameter*> ps;
        const int n = 1 + d_.pick(3);
        for (int i = 0; i < n; ++i) ps.push_back(pick_param());
        const int kind = d_.pick(fuzz::kOptimizerKinds + 2);
        std::unique_ptr<optim::Optimizer> opt;
        if (kind == fuzz::kOptimizerKinds) {
          opt = std::make_unique<optim::SGD>(
              ps, optim::SGDOptions(d_.value()).momentum(d_.value()).nesterov(d_.flag()));
        } else if (kind == fuzz::kOptimizerKinds + 1) {
          opt = std::make_unique<optim::Adam>(
              ps, optim::AdamOptions(d_.value()).betas({d_.value(), d_.value()}).eps(d_.value()));
        } else {
          opt = fuzz::make_optimizer(kind, ps);
        }
        w_.opt = std::move(opt);
        w_.opt_uses_modules = false;
        for (Parameter* p : ps) {
          w_.opt_uses_modules = w_.opt_uses_modules || (p != &w_.free[0] && p != &w_.free[1]);
        }
        return;
      }
      case 20: {
        if (!w_.opt) return;
        switch (d_.pick(3)) {
          case 0:
            w_.opt->step();
            break;
          case 1:
            w_.opt->set_lr(d_.value());
            break;
          default:
            w_.opt->zero_grad();
        }
        return;
      }
      case 21: {  // save, and load what was saved, corrupted, or raw bytes
        if (!w_.opt) return;
        if (d_.flag()) {
          std::ostringstream out;
          w_.opt->save(out);
          w_.saved_state = out.str();
          return;
        }
        std::string bytes = w_.saved_state;
        switch (d_.pick(3)) {
          case 0:
            break;
          case 1:
            for (int k = d_.pick(4); k >= 0 && !bytes.empty(); --k) {
              const std::size_t at =
                  static_cast<std::size_t>(d_.pick(static_cast<int>(bytes.size())));
              bytes[at] = static_cast<char>(d_.pick(256));
            }
            if (d_.flag()) bytes.resize(bytes.size() / 2);
            break;
          default:
            bytes = d_.bytes(512);
        }
        std::istringstream in(bytes);
        w_.opt->load(in);
        return;
      }
      case 22: {  // the generator
        if (d_.flag())
          w_.gen.normal_(pick_tensor(), d_.value(), d_.value());
        else
          w_.gen.manual_seed(static_cast<std::uint64_t>(d_.id()));
        return;
      }
      default: {  // printing a module, a parameter's gradient
        if (w_.table && w_.table->to_string().empty()) fail(kTarget, "empty module printing");
        if (w_.bag && w_.bag->to_string().empty()) fail(kTarget, "empty module printing");
        const Parameter* p = pick_param();
        if (p->has_grad() && !p->grad_is_sparse()) (void)p->grad().to_string();
        return;
      }
    }
  }

  void call(int op) {
    ++totals.calls;
    const Snapshot before = Snapshot::of(w_);
    try {
      act(op);
    } catch (const Error& e) {
      ++totals.threw;
      if (!fuzz::complete_message(e.what())) {
        fail(kTarget, "op " + std::to_string(op) + ": incomplete message: \"" + e.what() + "\"");
      }
      const std::string changed = before.diff(w_);
      if (!changed.empty()) {
        ++totals.modified_after_throw;
        fail(kTarget,
             "op " + std::to_string(op) + " modified " + changed + " after throwing: " + e.what());
      }
    } catch (const std::exception& e) {
      fail(kTarget, "op " + std::to_string(op) + ": not an emb::Error: " + e.what());
    }
  }

  Decoder& d_;
  World w_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  Decoder d(in);
  Fuzzer(d).run();
  return 0;
}
