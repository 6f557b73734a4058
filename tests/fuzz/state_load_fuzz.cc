// Fuzzes Optimizer::load, for every optimizer: a state file is untrusted input.
//
// Input: byte 0 picks the optimizer (optimizers.h), byte 1 the parameter dtype (bit 0) and the
// kind of table gradient (bit 1: sparse); the rest is the state file. Checked:
// - load() either succeeds or throws an emb::Error with a complete message, and then the
//   optimizer's state (its saved bytes) and the parameters are bit for bit as before;
// - a loaded state survives three steps (each succeeds, or throws and changes nothing) without
//   a sanitizer report: what load() accepts, step() can use;
// - save() then load() into a fresh optimizer gives the same bytes back.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "emb/emb.h"
#include "fuzz_common.h"
#include "optimizers.h"

namespace {

using emb::fuzz::fail;

constexpr const char* kTarget = "state_load_fuzz";

std::string saved(const emb::optim::Optimizer& opt) {
  std::ostringstream out;
  opt.save(out);
  return out.str();
}

void check_error(const emb::Error& e) {
  if (!emb::fuzz::complete_message(e.what())) {
    fail(kTarget, std::string("incomplete message: \"") + e.what() + "\"");
  }
}

// Runs call; on an emb::Error checks the message and that state, table and bias are unchanged.
template <typename Fn>
void attempt(const char* what, emb::optim::Optimizer& opt, const emb::Parameter& table,
             const emb::Parameter& bias, Fn&& call) {
  const std::string state = saved(opt);
  const emb::Tensor t0 = table.data().clone();
  const emb::Tensor b0 = bias.data().clone();
  try {
    call();
  } catch (const emb::Error& e) {
    check_error(e);
    if (saved(opt) != state || !table.data().equal(t0) || !bias.data().equal(b0)) {
      fail(kTarget, std::string("modified after throw in ") + what + ": " + e.what());
    }
  } catch (const std::exception& e) {
    fail(kTarget, std::string("not an emb::Error from ") + what + ": " + e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const int kind = data[0] % emb::fuzz::kOptimizerKinds;
  const emb::DType dtype = (data[1] & 1) ? emb::DType::kFloat32 : emb::DType::kFloat64;
  const bool sparse = (data[1] & 2) != 0;
  emb::Parameter table = emb::fuzz::fuzz_table(dtype);
  emb::Parameter bias = emb::fuzz::fuzz_bias(dtype);
  auto opt = emb::fuzz::make_optimizer(kind, {&table, &bias});

  bool loaded = false;
  attempt("load", *opt, table, bias, [&] {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data) + 2, size - 2));
    opt->load(in);
    loaded = true;
  });
  if (!loaded) return 0;
  for (int s = 0; s < 3; ++s) {
    emb::fuzz::fuzz_grads(table, bias, s, sparse);
    attempt("step", *opt, table, bias, [&] { opt->step(); });
  }
  const std::string state = saved(*opt);
  auto fresh = emb::fuzz::make_optimizer(kind, {&table, &bias});
  std::istringstream in(state);
  try {
    fresh->load(in);
  } catch (const std::exception& e) {
    fail(kTarget, std::string("load() refused what save() wrote: ") + e.what());
  }
  if (saved(*fresh) != state) fail(kTarget, "save -> load -> save changed the bytes");
  return 0;
}
