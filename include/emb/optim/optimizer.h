// emb/optim/optimizer.h — the base of every optimizer: parameters, per-parameter state, step(),
// zero_grad(), the learning rate, and exact save/restore of the state.
//
//   emb::Embedding table(emb::EmbeddingOptions(1000, 16).sparse(true));
//   emb::optim::Adagrad opt({&table.parameter()}, emb::optim::AdagradOptions(0.1));
//   table.backward(ids, grad_out);   // a sparse gradient
//   opt.step();                      // updates only the rows named by ids
//   opt.zero_grad();
//
// Every step() validates the gradients and states of all parameters before it updates any of
// them: a step that throws has changed no parameter and no state.
//
// Threads: an optimizer is not safe to use from several threads at once, and a step() must not
// run while another thread reads or writes its parameters (a forward, a backward, another
// step): the caller synchronizes. save() only reads, and may run beside other readers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "emb/parameter.h"
#include "emb/tensor.h"

namespace emb::detail {
struct SparseRows;
struct FusedStepAccess;
}  // namespace emb::detail

namespace emb::optim {

/// The state an optimizer keeps for one parameter (PyTorch's optimizer.state[p]).
///   step     number of step() calls in which the parameter had a gradient
///   tensors  named state tensors, e.g. "exp_avg", "exp_avg_sq", "sum", "momentum_buffer"
/// Empty (step 0, no tensors) until the optimizer first needs it.
struct ParamState {
  std::int64_t step = 0;
  std::map<std::string, Tensor> tensors;
};

class Optimizer {
 public:
  /// The largest step count a state may hold (2^53: every count up to it is exact as the double
  /// the bias corrections use). load() refuses a larger one; step() refuses to go past it.
  static constexpr std::int64_t kMaxStep = std::int64_t{1} << 53;

  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;
  virtual ~Optimizer();

  /// One update of every parameter that has a gradient (parameters without one are skipped,
  /// their step count unchanged). Throws (and changes nothing) when a gradient is of a kind the
  /// optimizer does not accept, e.g. NotImplementedError for a sparse gradient given to Adam.
  void step();
  /// Drops every parameter's gradient (zero_grad(set_to_none=True)).
  void zero_grad();

  /// The learning rate, settable between steps (for schedules). set_lr throws ValueError for a
  /// value the optimizer's constructor would reject, with the same message.
  virtual double lr() const = 0;
  virtual void set_lr(double lr) = 0;

  /// "SGD", "Adagrad", "Adam", ... (also the tag written by save()).
  virtual const char* name() const = 0;

  const std::vector<Parameter*>& parameters() const { return params_; }
  /// The state of parameter i (in constructor order). Throws IndexError for i out of range.
  const ParamState& state(std::size_t i) const;

  /// Writes the learning rate and every parameter's state (see docs/OPTIMIZERS.md for the byte
  /// layout). Restoring it into an optimizer of the same kind over parameters of the same shapes
  /// and continuing gives results bit-identical to an uninterrupted run. Other hyper-parameters
  /// come from the constructor. Throws IoError when the stream fails.
  void save(std::ostream& out) const;
  void save(const std::string& path) const;
  /// Reads what save() wrote, treating the bytes as untrusted: every field is checked (names
  /// known to this optimizer and not repeated, dtypes and shapes those of the parameter, row ids
  /// in range and distinct, step counts within kMaxStep) and nothing is allocated beyond what the
  /// parameters bound and the bytes actually hold. Throws FormatError (bad bytes, another
  /// optimizer's state, a state that does not fit the parameters) or IoError (the file cannot be
  /// opened or read, or is a directory; the message names the path), and then changes nothing.
  void load(std::istream& in);
  void load(const std::string& path);
  /// Replaces the learning rate and every parameter's state (what a checkpoint stores; see
  /// emb/io/checkpoint.h) after checking that each state fits its parameter. Throws FormatError
  /// (a state that does not fit, a bad learning rate, a count that is not parameters().size())
  /// and then changes nothing.
  void restore(double lr, std::vector<ParamState> states);

 protected:
  /// params: non-null, distinct, float32 or float64. Throws ValueError. `what` names the
  /// optimizer in messages.
  Optimizer(std::vector<Parameter*> params, const char* what);

  /// Throws if parameter i's gradient (present) cannot be used by this optimizer.
  virtual void check_grad(std::size_t i, const Parameter& param) const = 0;
  /// Updates parameter i (with a validated gradient) and its state; state.step is already
  /// incremented.
  virtual void update(std::size_t i, Parameter& param, ParamState& state) = 0;
  /// Throws FormatError unless a loaded state fits parameter i.
  virtual void check_loaded_state(std::size_t i, const ParamState& state) const;
  /// Called after load() replaced the state (to rebuild derived indexes).
  virtual void on_state_loaded() {}
  /// The fused backward + step of Embedding / EmbeddingBag (fused_backward_step): throws unless
  /// parameter i's update can be applied to a row-grouped sparse gradient as update() applies a
  /// sparse one (the default: NotImplementedError naming the optimizer).
  virtual void check_rows_update(std::size_t i) const;
  /// Applies a row-grouped sparse gradient to parameter i, bit for bit what update() does with the
  /// same gradient as a SparseGrad (state.step is already incremented).
  virtual void update_rows(std::size_t i, Parameter& param, ParamState& state,
                           const detail::SparseRows& rows);
  /// Throws FormatError unless a non-empty state holds every one of names and nothing but them
  /// and the optional ones.
  void require_state(std::size_t i, const ParamState& state,
                     std::initializer_list<const char*> names,
                     std::initializer_list<const char*> optional = {}) const;

  std::vector<Parameter*> params_;
  std::vector<ParamState> state_;

 private:
  friend struct detail::FusedStepAccess;
  // The checks step() makes of parameter i before it updates anything.
  void check_step(std::size_t i) const;
  // load() from a stream; `what` starts every message ("Adam::load: state.bin").
  void load_from(std::istream& in, const std::string& what);
};

}  // namespace emb::optim
