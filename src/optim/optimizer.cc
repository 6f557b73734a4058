#include "emb/optim/optimizer.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <ostream>
#include <set>
#include <vector>

#include "index_check.h"
#include "module_common.h"
#include "optim/fused_access.h"
#include "optim/ops.h"
#include "sparse_grad_access.h"

namespace emb {

namespace detail::optim {

CoalescedRows coalesce_rows(const SparseGrad& grad, bool maximize) {
  SparseGrad c = grad.is_coalesced() ? grad : grad.coalesce();
  CoalescedRows out;
  out.ids = detail::SparseGradAccess::ids(c);
  out.values = c.values();
  out.n = c.nnz();
  out.dim = c.dim();
  if (maximize) {
    // -g: a negated copy (the gradient itself stays as the caller left it).
    out.values = out.values.clone();
    visit_param_dtype(out.values.dtype(), [&](auto tag) {
      using T = decltype(tag);
      T* v = out.values.data<T>();
      for (std::int64_t k = 0; k < out.values.numel(); ++k) v[k] = -v[k];
    });
  }
  return out;
}

GroupedGrad group_rows(const SparseGrad& grad) {
  GroupedGrad out;
  const Tensor& ids = detail::SparseGradAccess::ids(grad);
  out.groups = group_by_row(ids.data<std::int64_t>(), grad.nnz(), grad.num_rows(), -1);
  const RowGroups& g = out.groups;
  out.rows = SparseRows{grad.dtype(),
                        grad.dim(),
                        grad.values().raw_data(),
                        grad.nnz(),
                        static_cast<std::int64_t>(g.rows.size()),
                        g.rows.data(),
                        g.starts.data(),
                        g.positions.data(),
                        nullptr,
                        false,
                        false};
  return out;
}

std::string param_prefix(const char* what, std::size_t i) {
  return std::string(what) + ": parameter " + std::to_string(i) + ": ";
}

void check_hyper(bool ok, const char* label, double value) {
  if (!ok) throw ValueError(std::string("Invalid ") + label + ": " + detail::py_float_repr(value));
}

std::string printable(const std::string& s) {
  std::string out;
  for (std::size_t k = 0; k < s.size() && k < 64; ++k) {
    const auto c = static_cast<unsigned char>(s[k]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
    }
  }
  return s.size() > 64 ? out + "..." : out;
}

Tensor full_like(const Tensor& t, double value) {
  if (value == 0.0 && !std::signbit(value)) return Tensor::zeros(t.shape(), t.dtype());
  return Tensor::full(t.shape(), value, t.dtype());
}

}  // namespace detail::optim

namespace optim {

void Optimizer::require_state(std::size_t i, const ParamState& state,
                              std::initializer_list<const char*> names,
                              std::initializer_list<const char*> optional) const {
  if (state.tensors.empty()) return;
  const std::string prefix = std::string(name()) + "::load: parameter " + std::to_string(i) + ": ";
  for (const char* key : names) {
    if (state.tensors.count(key) == 0)
      throw FormatError(prefix + "the state lacks \"" + detail::optim::printable(key) + "\"");
  }
  for (const auto& entry : state.tensors) {
    const std::string& key = entry.first;
    const auto is_key = [&](const char* k) { return key == k; };
    if (std::none_of(names.begin(), names.end(), is_key) &&
        std::none_of(optional.begin(), optional.end(), is_key)) {
      throw FormatError(prefix + "unknown state \"" + detail::optim::printable(key) + "\"");
    }
  }
}

Optimizer::Optimizer(std::vector<Parameter*> params, const char* what)
    : params_(std::move(params)) {
  if (params_.empty())
    throw ValueError(std::string(what) + ": optimizer got an empty parameter list");
  std::set<const Parameter*> seen;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Parameter* p = params_[i];
    const std::string prefix = detail::optim::param_prefix(what, i);
    if (p == nullptr) throw ValueError(prefix + "null parameter");
    if (!seen.insert(p).second) throw ValueError(prefix + "the parameter appears more than once");
    if (!p->data().defined()) throw ValueError(prefix + "the parameter has no tensor");
    const DType dt = p->data().dtype();
    if (dt != DType::kFloat32 && dt != DType::kFloat64) {
      throw ValueError(prefix + "dtype " + std::string(dtype_name(dt)) +
                       " is not supported (float32 or float64)");
    }
  }
  state_.resize(params_.size());
}

Optimizer::~Optimizer() = default;

const ParamState& Optimizer::state(std::size_t i) const {
  if (i >= state_.size()) {
    throw IndexError(std::string(name()) + "::state: parameter " + std::to_string(i) +
                     " is out of range for " + std::to_string(state_.size()) + " parameters");
  }
  return state_[i];
}

void Optimizer::check_step(std::size_t i) const {
  const Parameter& p = *params_[i];
  const std::string prefix = detail::optim::param_prefix(name(), i);
  if (!p.data().defined()) throw ValueError(prefix + "the parameter has no tensor");
  const DType dt = p.data().dtype();
  if (dt != DType::kFloat32 && dt != DType::kFloat64) {
    throw ValueError(prefix + "dtype " + std::string(dtype_name(dt)) +
                     " is not supported (float32 or float64)");
  }
  p.data().check_writable((std::string(name()) + "::step").c_str());
  if (state_[i].step >= kMaxStep) {
    throw ValueError(prefix + "the step count " + std::to_string(state_[i].step) +
                     " has reached the limit 2^53");
  }
  try {
    check_loaded_state(i, state_[i]);  // the tensor may have been replaced since
  } catch (const FormatError& e) {
    throw ValueError(prefix + "the parameter no longer matches its optimizer state (" + e.what() +
                     ")");
  }
}

void Optimizer::step() {
  // Validate everything first: a step that throws changes nothing.
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Parameter& p = *params_[i];
    if (!p.has_grad()) continue;
    check_step(i);
    check_grad(i, p);
  }
  for (std::size_t i = 0; i < params_.size(); ++i) {
    Parameter& p = *params_[i];
    if (!p.has_grad()) continue;
    state_[i].step += 1;
    update(i, p, state_[i]);
  }
}

void Optimizer::check_rows_update(std::size_t i) const {
  throw NotImplementedError(detail::optim::param_prefix(name(), i) +
                            "a fused backward + step is not supported by " + name() +
                            " (supported: SGD without momentum, Adagrad, RowWiseAdagrad, SparseAdam, LazyAdam, "
                            "LazyAdamW); call "
                            "backward() and step()");
}

void Optimizer::update_rows(std::size_t i, Parameter& /*param*/, ParamState& /*state*/,
                            const detail::SparseRows& /*rows*/) {
  check_rows_update(i);  // not reached: callers check first
}

void Optimizer::zero_grad() {
  for (Parameter* p : params_) p->zero_grad();
}

void Optimizer::check_loaded_state(std::size_t i, const ParamState& state) const {
  const Tensor& data = params_[i]->data();
  for (const auto& [key, t] : state.tensors) {
    if (t.dtype() != data.dtype() || t.shape() != data.shape()) {
      throw FormatError(std::string(name()) + "::load: state \"" + detail::optim::printable(key) +
                        "\" of parameter " + std::to_string(i) + " is " +
                        shape_to_string(t.shape()) + " " + std::string(dtype_name(t.dtype())) +
                        ", the parameter is " + shape_to_string(data.shape()) + " " +
                        std::string(dtype_name(data.dtype())));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Binary state format (little-endian, see docs/OPTIMIZERS.md):
//   "EMBOPTIM" u32 version=1  u32 len + name  f64 lr  u64 num_params
//   per parameter: i64 step  u32 num_tensors
//     per tensor: u32 len + key  u8 dtype  u32 ndim  i64 sizes[ndim]  raw element bytes

namespace {

constexpr char kMagic[8] = {'E', 'M', 'B', 'O', 'P', 'T', 'I', 'M'};
constexpr std::uint32_t kVersion = 1;

template <typename T>
void put(std::ostream& out, T v) {
  out.write(reinterpret_cast<const char*>(&v), sizeof(T));
}

void put_string(std::ostream& out, const std::string& s) {
  put<std::uint32_t>(out, static_cast<std::uint32_t>(s.size()));
  out.write(s.data(), static_cast<std::streamsize>(s.size()));
}

class Reader {
 public:
  Reader(std::istream& in, std::string what) : in_(in), what_(std::move(what)) {}
  template <typename T>
  T get(const char* field) {
    T v{};
    bytes(&v, sizeof(T), field);
    return v;
  }
  void bytes(void* dst, std::size_t n, const char* field) {
    in_.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
    if (in_.bad()) throw IoError(what_ + ": read failed (reading " + std::string(field) + ")");
    if (static_cast<std::size_t>(in_.gcount()) != n) {
      throw FormatError(what_ + ": truncated state (reading " + field + ")");
    }
  }
  // A tensor's elements. Read in chunks before the tensor is allocated: a size field can claim
  // more bytes than the input holds, and only bytes that arrived are ever paid for.
  Tensor tensor(const Shape& shape, DType dtype) {
    const std::size_t n =
        static_cast<std::size_t>(checked_numel(shape, "state tensor")) * element_size(dtype);
    constexpr std::size_t kChunk = std::size_t{1} << 20;
    std::vector<char> buf;
    while (buf.size() < n) {
      const std::size_t old = buf.size();
      buf.resize(old + std::min(kChunk, n - old));
      bytes(buf.data() + old, buf.size() - old, "tensor data");
    }
    Tensor t = Tensor::empty(shape, dtype);
    if (n != 0) std::memcpy(t.raw_data(), buf.data(), n);
    return t;
  }
  std::string string(const char* field, std::uint32_t max_len = 4096) {
    const auto n = get<std::uint32_t>(field);
    if (n > max_len)
      throw FormatError(what_ + ": implausible length " + std::to_string(n) + " of " + field);
    std::string s(n, '\0');
    bytes(s.data(), n, field);
    return s;
  }
  const std::string& what() const { return what_; }

 private:
  std::istream& in_;
  std::string what_;
};

}  // namespace

void Optimizer::save(std::ostream& out) const {
  out.write(kMagic, sizeof(kMagic));
  put<std::uint32_t>(out, kVersion);
  put_string(out, name());
  put<double>(out, lr());
  put<std::uint64_t>(out, params_.size());
  for (const ParamState& s : state_) {
    put<std::int64_t>(out, s.step);
    put<std::uint32_t>(out, static_cast<std::uint32_t>(s.tensors.size()));
    for (const auto& [key, t] : s.tensors) {
      put_string(out, key);
      put<std::uint8_t>(out, static_cast<std::uint8_t>(t.dtype()));
      put<std::uint32_t>(out, static_cast<std::uint32_t>(t.dim()));
      for (std::int64_t d : t.shape()) put<std::int64_t>(out, d);
      out.write(static_cast<const char*>(t.raw_data()), static_cast<std::streamsize>(t.nbytes()));
    }
  }
  if (!out) throw IoError(std::string(name()) + "::save: write failed");
}

void Optimizer::save(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw IoError(std::string(name()) + "::save: cannot open " + path + " for writing");
  save(out);
  out.close();
  if (!out) throw IoError(std::string(name()) + "::save: write to " + path + " failed");
}

void Optimizer::load(std::istream& in) {
  load_from(in, std::string(name()) + "::load");
}

void Optimizer::load_from(std::istream& in, const std::string& what) {
  Reader r(in, what);
  char magic[sizeof(kMagic)];
  r.bytes(magic, sizeof(magic), "magic");
  if (std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) {
    throw FormatError(r.what() + ": not an emb optimizer state (bad magic)");
  }
  const auto version = r.get<std::uint32_t>("version");
  if (version != kVersion) {
    throw FormatError(r.what() + ": unsupported version " + std::to_string(version) +
                      " (expected " + std::to_string(kVersion) + ")");
  }
  const std::string tag = r.string("name");
  if (tag != name())
    throw FormatError(r.what() + ": the state is of a " +
                      (tag.empty() ? "nameless" : detail::optim::printable(tag)) + " optimizer");
  const double lr_value = r.get<double>("lr");
  const auto n = r.get<std::uint64_t>("parameter count");
  if (n != params_.size()) {
    throw FormatError(r.what() + ": the state has " + std::to_string(n) +
                      " parameters, the optimizer " + std::to_string(params_.size()));
  }
  std::vector<ParamState> loaded(params_.size());
  for (std::size_t i = 0; i < params_.size(); ++i) {
    ParamState& s = loaded[i];
    s.step = r.get<std::int64_t>("step");
    if (s.step < 0 || s.step > kMaxStep) {
      throw FormatError(r.what() + ": parameter " + std::to_string(i) + ": step " +
                        std::to_string(s.step) + " is out of range (0 to 2^53)");
    }
    const auto count = r.get<std::uint32_t>("tensor count");
    if (count > 64)
      throw FormatError(r.what() + ": implausible tensor count " + std::to_string(count));
    for (std::uint32_t k = 0; k < count; ++k) {
      std::string key = r.string("tensor name");
      if (s.tensors.count(key) != 0) {
        throw FormatError(r.what() + ": parameter " + std::to_string(i) + ": state \"" +
                          detail::optim::printable(key) + "\" appears twice");
      }
      const auto dt = r.get<std::uint8_t>("dtype");
      if (dt > static_cast<std::uint8_t>(DType::kInt64)) {
        throw FormatError(r.what() + ": bad dtype code " + std::to_string(dt) + " of \"" +
                          detail::optim::printable(key) + "\"");
      }
      const auto ndim = r.get<std::uint32_t>("ndim");
      if (ndim > 16) throw FormatError(r.what() + ": implausible rank " + std::to_string(ndim));
      Shape shape(ndim);
      for (auto& d : shape) d = r.get<std::int64_t>("size");
      // No state tensor is larger than its parameter (or than one value per row): check the
      // size before allocating, so that a corrupt file cannot ask for terabytes.
      const Tensor& param = params_[i]->data();
      const std::int64_t limit =
          std::max(param.numel(), param.dim() > 0 ? param.size(0) : std::int64_t{1});
      try {
        const std::int64_t numel = checked_numel(shape, "state tensor");
        if (numel > limit) {
          throw ValueError(std::to_string(numel) + " elements, more than the parameter's " +
                           std::to_string(limit));
        }
      } catch (const ValueError& e) {
        throw FormatError(r.what() + ": bad shape of \"" + detail::optim::printable(key) +
                          "\": " + e.what());
      }
      s.tensors.emplace(std::move(key), r.tensor(shape, static_cast<DType>(dt)));
    }
    check_loaded_state(i, s);
  }
  restore(lr_value, std::move(loaded));
}

void Optimizer::restore(double lr_value, std::vector<ParamState> states) {
  const std::string what = std::string(name()) + "::load";
  if (states.size() != params_.size()) {
    throw FormatError(what + ": the state has " + std::to_string(states.size()) +
                      " parameters, the optimizer " + std::to_string(params_.size()));
  }
  for (std::size_t i = 0; i < states.size(); ++i) {
    if (states[i].step < 0 || states[i].step > kMaxStep) {
      throw FormatError(what + ": parameter " + std::to_string(i) + ": step " +
                        std::to_string(states[i].step) + " is out of range (0 to 2^53)");
    }
    for (const auto& [key, t] : states[i].tensors) {
      if (!t.defined()) throw FormatError(what + ": state \"" + key + "\" is undefined");
    }
    check_loaded_state(i, states[i]);
  }
  // Everything checked: commit (set_lr validates before it stores).
  try {
    set_lr(lr_value);
  } catch (const ValueError& e) {
    throw FormatError(what + ": " + e.what());
  }
  state_ = std::move(states);
  on_state_loaded();
}

void Optimizer::load(const std::string& path) {
  const std::string what = std::string(name()) + "::load";
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw IoError(what + ": cannot read " + path + ": it is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(what + ": cannot open " + path);
  load_from(in, what + ": " + path);
}

}  // namespace optim

std::size_t detail::FusedStepAccess::check(const emb::optim::Optimizer& opt, const Parameter& param,
                                           const char* op) {
  const auto& ps = opt.params_;
  const auto it = std::find(ps.begin(), ps.end(), &param);
  if (it == ps.end()) {
    throw ValueError(std::string(op) + ": the module's weight is not one of the " + opt.name() +
                     " optimizer's parameters");
  }
  const auto i = static_cast<std::size_t>(it - ps.begin());
  if (param.has_grad()) {
    throw ValueError(std::string(op) + ": the weight already holds a gradient (" +
                     (param.grad_is_sparse() ? "sparse" : "dense") +
                     "); step or zero_grad() before a fused step");
  }
  opt.check_step(i);
  opt.check_rows_update(i);
  return i;
}

void detail::FusedStepAccess::apply(emb::optim::Optimizer& opt, std::size_t i,
                                    const SparseRows& rows) {
  opt.state_[i].step += 1;
  opt.update_rows(i, *opt.params_[i], opt.state_[i], rows);
}

}  // namespace emb
