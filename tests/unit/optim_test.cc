// Unit tests of the optimizers: hyper-parameter checks, sparse/dense rules, failed steps that
// change nothing, exact save/restore, the semantics of LazyAdam/LazyAdamW and RowWiseAdagrad on
// hand-computed values, and sparse steps that touch only the batch's rows.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "emb/emb.h"
#include "expect_error.h"

namespace {

using namespace emb;
using namespace emb::optim;
using emb::testing::expect_error;

Parameter table_param(std::int64_t rows, std::int64_t dim, DType dtype = DType::kFloat64) {
  Tensor t = Tensor::empty({rows, dim}, dtype);
  for (std::int64_t k = 0; k < t.numel(); ++k)
    t.set_double(k, 0.25 * static_cast<double>(k % 7) - 0.6);
  return Parameter(t);
}

SparseGrad sparse_grad(std::vector<std::int64_t> ids, std::vector<double> values,
                       std::int64_t rows) {
  const auto n = static_cast<std::int64_t>(ids.size());
  const auto dim = static_cast<std::int64_t>(values.size()) / std::max<std::int64_t>(n, 1);
  return SparseGrad(Tensor::from_vector<std::int64_t>(ids, {n}),
                    Tensor::from_vector<double>(values, {n, dim}), rows);
}

// ---------------------------------------------------------------------------------------------
// Hyper-parameters

TEST(OptimOptions, PyTorchDefaults) {
  EXPECT_EQ(AdagradOptions().lr(), 1e-2);
  EXPECT_EQ(AdagradOptions().eps(), 1e-10);
  EXPECT_EQ(AdamOptions().lr(), 1e-3);
  EXPECT_EQ(AdamOptions().eps(), 1e-8);
  EXPECT_EQ(AdamOptions().weight_decay(), 0.0);
  EXPECT_EQ(AdamWOptions().weight_decay(), 1e-2);
  EXPECT_EQ(std::get<0>(AdamOptions().betas()), 0.9);
  EXPECT_EQ(std::get<1>(SparseAdamOptions().betas()), 0.999);
  EXPECT_EQ(SGDOptions(0.1).momentum(), 0.0);
  EXPECT_FALSE(SGDOptions(0.1).nesterov());
}

TEST(OptimOptions, HyperParameterErrors) {
  Parameter p = table_param(3, 2);
  std::vector<Parameter*> ps{&p};
  expect_error<ValueError>([&] { SGD(ps, SGDOptions(-1)); }, "Invalid learning rate: -1.0");
  expect_error<ValueError>([&] { SGD(ps, SGDOptions(0.1).momentum(-0.5)); },
                           "Invalid momentum value: -0.5");
  expect_error<ValueError>([&] { SGD(ps, SGDOptions(0.1).weight_decay(-1e-3)); },
                           "Invalid weight_decay value: -0.001");
  expect_error<ValueError>([&] { SGD(ps, SGDOptions(0.1).nesterov(true)); },
                           "Nesterov momentum requires a momentum and zero dampening");
  expect_error<ValueError>(
      [&] { SGD(ps, SGDOptions(0.1).momentum(0.9).dampening(0.1).nesterov(true)); },
      "Nesterov momentum requires a momentum and zero dampening");
  expect_error<ValueError>([&] { SGD(ps, SGDOptions(std::nan(""))); },
                           "Invalid learning rate: nan");
  expect_error<ValueError>([&] { Adagrad(ps, AdagradOptions(-0.1)); },
                           "Invalid learning rate: -0.1");
  expect_error<ValueError>([&] { Adagrad(ps, AdagradOptions().lr_decay(-1)); },
                           "Invalid lr_decay value: -1.0");
  expect_error<ValueError>([&] { Adagrad(ps, AdagradOptions().weight_decay(-1)); },
                           "Invalid weight_decay value: -1.0");
  expect_error<ValueError>([&] { Adagrad(ps, AdagradOptions().initial_accumulator_value(-1)); },
                           "Invalid initial_accumulator_value value: -1.0");
  expect_error<ValueError>([&] { Adagrad(ps, AdagradOptions().eps(-1e-10)); },
                           "Invalid epsilon value: -1e-10");
  expect_error<ValueError>([&] { Adam(ps, AdamOptions(-1)); }, "Invalid learning rate: -1.0");
  expect_error<ValueError>([&] { Adam(ps, AdamOptions().eps(-1)); }, "Invalid epsilon value: -1.0");
  expect_error<ValueError>(
      [&] {
        Adam(ps, AdamOptions().betas({1.0, 0.999}));
      },
      "Invalid beta parameter at index 0: 1.0");
  expect_error<ValueError>(
      [&] {
        AdamW(ps, AdamWOptions().betas({0.9, -0.1}));
      },
      "Invalid beta parameter at index 1: -0.1");
  expect_error<ValueError>([&] { AdamW(ps, AdamWOptions().weight_decay(-0.01)); },
                           "Invalid weight_decay value: -0.01");
  expect_error<ValueError>([&] { LazyAdam(ps, AdamOptions(-2)); }, "Invalid learning rate: -2.0");
  expect_error<ValueError>([&] { SparseAdam(ps, SparseAdamOptions(0.0)); },
                           "Invalid learning rate: 0.0");
  expect_error<ValueError>([&] { SparseAdam(ps, SparseAdamOptions().eps(0.0)); },
                           "Invalid epsilon value: 0.0");
  expect_error<ValueError>(
      [&] {
        SparseAdam(ps, SparseAdamOptions().betas({0.9, 1.0}));
      },
      "Invalid beta parameter at index 1: 1.0");
  expect_error<ValueError>([&] { RowWiseAdagrad(ps, RowWiseAdagradOptions(-1)); },
                           "Invalid learning rate: -1.0");
  // Zero is fine where PyTorch allows it.
  EXPECT_NO_THROW(SGD(ps, SGDOptions(0.0)));
  EXPECT_NO_THROW(Adam(ps, AdamOptions(0.0).betas({0.0, 0.0})));
}

TEST(OptimOptions, BadParameterLists) {
  Parameter p = table_param(3, 2);
  Parameter half(Tensor::zeros({3}, DType::kFloat16));
  expect_error<ValueError>([&] { SGD({}, SGDOptions(0.1)); }, "empty parameter list");
  expect_error<ValueError>(
      [&] {
        SGD({&p, nullptr}, SGDOptions(0.1));
      },
      "parameter 1: null parameter");
  expect_error<ValueError>(
      [&] {
        Adam({&p, &p});
      },
      "parameter 1: the parameter appears more than once");
  expect_error<ValueError>([&] { Adam({&half}); }, "parameter 0: dtype float16 is not supported");
}

TEST(OptimOptions, LearningRateSettableBetweenSteps) {
  Parameter p = table_param(2, 2);
  SGD sgd({&p}, SGDOptions(0.5));
  EXPECT_EQ(sgd.lr(), 0.5);
  sgd.set_lr(0.25);
  EXPECT_EQ(sgd.lr(), 0.25);
  EXPECT_EQ(sgd.options().lr(), 0.25);
  expect_error<ValueError>([&] { sgd.set_lr(-1); }, "Invalid learning rate: -1.0");
  EXPECT_EQ(sgd.lr(), 0.25);
  const double before = p.data().get_double(0);
  p.accumulate_grad(Tensor::full({2, 2}, 1.0, DType::kFloat64));
  sgd.step();
  EXPECT_EQ(p.data().get_double(0), before - 0.25);
  SparseAdam sa({&p});
  expect_error<ValueError>([&] { sa.set_lr(0.0); }, "Invalid learning rate: 0.0");
  EXPECT_EQ(sa.lr(), 1e-3);
}

// ---------------------------------------------------------------------------------------------
// Sparse/dense rules; a failed step changes nothing

TEST(OptimRules, SparseAndDenseMisuse) {
  Parameter p = table_param(4, 3);
  p.accumulate_grad(sparse_grad({1, 2}, {1, 2, 3, 4, 5, 6}, 4));
  expect_error<NotImplementedError>(
      [&] { Adam({&p}).step(); },
      "Adam does not support sparse gradients, please consider SparseAdam instead");
  expect_error<NotImplementedError>([&] { AdamW({&p}).step(); },
                                    "AdamW does not support sparse gradients");
  expect_error<NotImplementedError>([&] { SGD({&p}, SGDOptions(0.1).weight_decay(0.1)).step(); },
                                    "weight_decay is not supported with sparse gradients");
  expect_error<NotImplementedError>(
      [&] { Adagrad({&p}, AdagradOptions().weight_decay(0.1)).step(); },
      "weight_decay option is not compatible with sparse gradients");
  Parameter d = table_param(4, 3);
  d.accumulate_grad(Tensor::full({4, 3}, 1.0, DType::kFloat64));
  expect_error<NotImplementedError>(
      [&] { SparseAdam({&d}).step(); },
      "SparseAdam does not support dense gradients, please consider Adam instead");
}

TEST(OptimRules, FailedStepChangesNothing) {
  // Parameter 0 has a good dense gradient, parameter 1 a sparse one Adam refuses: nothing moves.
  Parameter a = table_param(3, 2);
  Parameter b = table_param(4, 2);
  const Tensor a0 = a.data().clone();
  const Tensor b0 = b.data().clone();
  a.accumulate_grad(Tensor::full({3, 2}, 0.5, DType::kFloat64));
  b.accumulate_grad(sparse_grad({0}, {1, 1}, 4));
  Adam adam({&a, &b});
  expect_error<NotImplementedError>([&] { adam.step(); },
                                    "Adam: parameter 1: Adam does not support sparse");
  EXPECT_TRUE(a.data().equal(a0));
  EXPECT_TRUE(b.data().equal(b0));
  EXPECT_EQ(adam.state(0).step, 0);
  EXPECT_TRUE(adam.state(0).tensors.empty());
  // Adagrad: its state exists from the start and must not move either.
  Adagrad ada({&a, &b}, AdagradOptions(0.1).weight_decay(0.1));
  const Tensor sum0 = ada.state(0).tensors.at("sum").clone();
  EXPECT_THROW(ada.step(), NotImplementedError);
  EXPECT_TRUE(ada.state(0).tensors.at("sum").equal(sum0));
  EXPECT_TRUE(a.data().equal(a0));
  EXPECT_EQ(ada.state(0).step, 0);
}

TEST(OptimRules, ParametersWithoutGradientAreSkipped) {
  Parameter a = table_param(2, 2);
  Parameter b = table_param(2, 2);
  const Tensor b0 = b.data().clone();
  Adam adam({&a, &b});
  a.accumulate_grad(Tensor::full({2, 2}, 1.0, DType::kFloat64));
  adam.step();
  EXPECT_EQ(adam.state(0).step, 1);
  EXPECT_EQ(adam.state(1).step, 0);
  EXPECT_TRUE(b.data().equal(b0));
  adam.zero_grad();
  EXPECT_FALSE(a.has_grad());
  EXPECT_THROW(adam.state(2), IndexError);
}

// ---------------------------------------------------------------------------------------------
// Save -> restore -> continue is bit-identical to an uninterrupted run

using Factory = std::function<std::unique_ptr<Optimizer>(std::vector<Parameter*>)>;

// Step s's gradients: a sparse one for the table (dense when dense_table), a dense one for bias.
void set_grads(Parameter& table, Parameter& bias, int s, bool dense_table) {
  table.zero_grad();
  bias.zero_grad();
  const double k = 0.1 * (s + 1);
  SparseGrad g =
      sparse_grad({s % 5, 2, s % 5, 4}, {k, -1, 2, k * k, 0.5, -k, 3, 1, -2, 0.25, k, -0.5}, 6);
  if (dense_table)
    table.accumulate_grad(g.to_dense());
  else
    table.accumulate_grad(g);
  bias.accumulate_grad(Tensor::from_vector<double>({k, -k, 1.0}, {3}));
}

void check_resume(const Factory& make, bool sparse_table, bool with_bias) {
  auto run = [&](int total, int split) {
    Parameter table = table_param(6, 3);
    Parameter bias(Tensor::from_vector<double>({1, 2, 3}, {3}));
    std::vector<Parameter*> ps{&table};
    if (with_bias) ps.push_back(&bias);
    auto opt = make(ps);
    for (int s = 0; s < total; ++s) {
      if (s == split) {
        std::stringstream saved;
        opt->save(saved);
        // A fresh optimizer over copies of the parameters, restored from the bytes.
        opt = make(ps);
        opt->set_lr(123.0);  // load() brings back the saved learning rate
        opt->load(saved);
      }
      if (s == 3) opt->set_lr(opt->lr() * 0.5);
      set_grads(table, bias, s, !sparse_table);
      opt->step();
    }
    return std::make_pair(table.data().clone(), bias.data().clone());
  };
  const auto straight = run(10, -1);
  const auto resumed = run(10, 6);
  EXPECT_TRUE(straight.first.equal(resumed.first));
  EXPECT_TRUE(straight.second.equal(resumed.second));
}

TEST(OptimState, SaveRestoreContinueIsBitIdentical) {
  const std::vector<std::pair<std::string, Factory>> sparse_ok = {
      {"SGD", [](auto ps) { return std::make_unique<SGD>(ps, SGDOptions(0.1)); }},
      {"SGD momentum",
       [](auto ps) {
         return std::make_unique<SGD>(ps, SGDOptions(0.1).momentum(0.9).nesterov(true));
       }},
      {"Adagrad",
       [](auto ps) { return std::make_unique<Adagrad>(ps, AdagradOptions(0.1).lr_decay(0.1)); }},
      {"LazyAdam",
       [](auto ps) { return std::make_unique<LazyAdam>(ps, AdamOptions(0.01).amsgrad(true)); }},
      {"LazyAdamW", [](auto ps) { return std::make_unique<LazyAdamW>(ps, AdamWOptions(0.01)); }},
      {"RowWiseAdagrad",
       [](auto ps) { return std::make_unique<RowWiseAdagrad>(ps, RowWiseAdagradOptions(0.1)); }},
  };
  for (const auto& [name, make] : sparse_ok) {
    SCOPED_TRACE(name);
    check_resume(make, true, true);
    check_resume(make, false, true);
  }
  SCOPED_TRACE("dense only / sparse only");
  check_resume(
      [](auto ps) {
        return std::make_unique<Adam>(ps, AdamOptions(0.01).amsgrad(true).weight_decay(0.1));
      },
      false, true);
  check_resume([](auto ps) { return std::make_unique<AdamW>(ps, AdamWOptions(0.01)); }, false,
               true);
  check_resume([](auto ps) { return std::make_unique<SparseAdam>(ps, SparseAdamOptions(0.01)); },
               true, false);
}

TEST(OptimState, SaveToFileAndBadStates) {
  Parameter p = table_param(6, 3);
  Parameter bias(Tensor::zeros({3}, DType::kFloat64));
  Adam adam({&p});
  set_grads(p, bias, 0, true);
  adam.step();
  const std::string path = ::testing::TempDir() + "emb_optim_state.bin";
  adam.save(path);
  Adam other({&p});
  other.load(path);
  EXPECT_EQ(other.state(0).step, 1);
  EXPECT_TRUE(other.state(0).tensors.at("exp_avg").equal(adam.state(0).tensors.at("exp_avg")));

  std::stringstream saved;
  adam.save(saved);
  const std::string bytes = saved.str();
  // Another optimizer's state, bad magic, truncation, wrong parameter shape: FormatError, no
  // change.
  Adagrad ada({&p});
  const Tensor sum0 = ada.state(0).tensors.at("sum").clone();
  std::stringstream s1(bytes);
  expect_error<FormatError>([&] { ada.load(s1); }, "the state is of a Adam optimizer");
  EXPECT_TRUE(ada.state(0).tensors.at("sum").equal(sum0));
  std::stringstream s2("NOTASTATE.......");
  expect_error<FormatError>([&] { other.load(s2); }, "bad magic");
  std::stringstream s3(bytes.substr(0, bytes.size() - 5));
  expect_error<FormatError>([&] { other.load(s3); }, "truncated");
  EXPECT_EQ(other.state(0).step, 1);
  Parameter q = table_param(5, 3);
  Adam wrong({&q});
  std::stringstream s4(bytes);
  expect_error<FormatError>([&] { wrong.load(s4); }, "exp_avg");
  EXPECT_EQ(wrong.state(0).step, 0);
  // A state larger than the parameter is refused before anything is allocated.
  Parameter huge_param = table_param(600, 3);
  Adam huge({&huge_param});
  Parameter g = table_param(600, 3);
  huge_param.accumulate_grad(g.data());
  huge.step();
  std::stringstream s7;
  huge.save(s7);
  expect_error<FormatError>([&] { other.load(s7); }, "more than the parameter's 18");
  EXPECT_EQ(other.state(0).step, 1);
  expect_error<IoError>([&] { other.load(std::string("/nonexistent/dir/state.bin")); },
                        "cannot open");
  // An Adagrad state without its "sum": FormatError, not a crash on the next step.
  Adagrad ada2({&p});
  std::stringstream s5;
  ada2.save(s5);
  std::string bad = s5.str();
  const std::size_t at = bad.find("sum");
  ASSERT_NE(at, std::string::npos);
  bad[at] = 'x';
  std::stringstream s6(bad);
  expect_error<FormatError>([&] { ada2.load(s6); }, "expected exactly one state tensor \"sum\"");
}

// ---------------------------------------------------------------------------------------------
// Sparse steps touch only the batch's rows

TEST(OptimSparse, StepTouchesOnlyBatchRows) {
  const std::vector<std::pair<std::string, Factory>> all = {
      {"SGD", [](auto ps) { return std::make_unique<SGD>(ps, SGDOptions(0.1)); }},
      {"Adagrad",
       [](auto ps) {
         return std::make_unique<Adagrad>(ps, AdagradOptions(0.1).initial_accumulator_value(0.5));
       }},
      {"SparseAdam",
       [](auto ps) { return std::make_unique<SparseAdam>(ps, SparseAdamOptions(0.1)); }},
      {"LazyAdam", [](auto ps) { return std::make_unique<LazyAdam>(ps, AdamOptions(0.1)); }},
      {"LazyAdamW",
       [](auto ps) {
         return std::make_unique<LazyAdamW>(ps, AdamWOptions(0.1).weight_decay(0.5));
       }},
      {"RowWiseAdagrad",
       [](auto ps) {
         return std::make_unique<RowWiseAdagrad>(ps, RowWiseAdagradOptions(0.1).weight_decay(0.5));
       }},
  };
  for (const auto& [name, make] : all) {
    SCOPED_TRACE(name);
    Parameter p = table_param(50, 4);
    const Tensor before = p.data().clone();
    auto opt = make({&p});
    std::map<std::string, Tensor> state_before;
    for (const auto& [k, t] : opt->state(0).tensors) state_before[k] = t.clone();
    p.accumulate_grad(
        sparse_grad({7, 31, 7}, {1, 2, 3, 4, -1, -2, -3, -4, 0.5, 0.5, 0.5, 0.5}, 50));
    opt->step();
    for (std::int64_t r = 0; r < 50; ++r) {
      const bool touched = r == 7 || r == 31;
      for (std::int64_t d = 0; d < 4; ++d) {
        const double now = p.data().at<double>(r, d);
        const double was = before.at<double>(r, d);
        if (touched)
          EXPECT_NE(now, was) << "row " << r;
        else
          EXPECT_EQ(now, was) << "row " << r;
      }
      for (const auto& [k, t] : opt->state(0).tensors) {
        if (touched || t.numel() == 0 || state_before.count(k) == 0) continue;
        const std::int64_t width = t.numel() / 50;
        for (std::int64_t e = r * width; e < (r + 1) * width; ++e) {
          EXPECT_EQ(t.get_double(e), state_before[k].get_double(e)) << k << " row " << r;
        }
      }
    }
  }
}

TEST(OptimSparse, SGDMomentumKeepsMovingTouchedRows) {
  Parameter p = table_param(10, 2);
  SGD sgd({&p}, SGDOptions(1.0).momentum(0.5));
  p.accumulate_grad(sparse_grad({3}, {1, 2}, 10));
  const double r3 = p.data().at<double>(3, 0);
  sgd.step();
  EXPECT_EQ(p.data().at<double>(3, 0), r3 - 1.0);  // buf = g
  sgd.zero_grad();
  p.accumulate_grad(sparse_grad({5}, {4, 4}, 10));
  sgd.step();
  EXPECT_EQ(p.data().at<double>(3, 0), r3 - 1.0 - 0.5);  // buf = 0.5 * buf: row 3 moves on
  EXPECT_EQ(p.data().at<double>(0, 0), table_param(10, 2).data().at<double>(0, 0));
}

// ---------------------------------------------------------------------------------------------
// LazyAdam / LazyAdamW and RowWiseAdagrad on hand-computed values

TEST(OptimLazy, LazyAdamUpdatesOnlyPresentRows) {
  Parameter p(Tensor::zeros({3, 2}, DType::kFloat64));
  LazyAdam opt({&p}, AdamOptions(0.1));
  // Step 1, row 1 only, g = [2, -4]: m = 0.1 g, v = 0.001 g², m̂ = g, v̂ = g²:
  // θ = -lr * g / (|g| + eps).
  p.accumulate_grad(sparse_grad({1}, {2, -4}, 3));
  opt.step();
  EXPECT_NEAR(p.data().at<double>(1, 0), -0.1 * 2 / (2 + 1e-8), 1e-15);
  EXPECT_NEAR(p.data().at<double>(1, 1), 0.1 * 4 / (4 + 1e-8), 1e-15);
  EXPECT_EQ(p.data().at<double>(0, 0), 0.0);
  EXPECT_EQ(p.data().at<double>(2, 1), 0.0);
  const Tensor& m = opt.state(0).tensors.at("exp_avg");
  EXPECT_NEAR(m.at<double>(1, 0), 0.2, 1e-16);
  // Step 2, row 0 only (twice: summed first, g = [1, 1]). Row 1 neither moves nor decays
  // (dense Adam would move it by its momentum and decay m to 0.18).
  const double row1 = p.data().at<double>(1, 0);
  opt.zero_grad();
  p.accumulate_grad(sparse_grad({0, 0}, {0.25, 0.5, 0.75, 0.5}, 3));
  opt.step();
  EXPECT_EQ(p.data().at<double>(1, 0), row1);
  EXPECT_NEAR(m.at<double>(1, 0), 0.2, 1e-16);
  // Row 0 at t = 2 with fresh moments: m = 0.1, v = 0.001, m̂ = 0.1/0.19, v̂ = 0.001/(1-0.999²).
  const double mhat = 0.1 / (1 - 0.81);
  const double vhat = 0.001 / (1 - 0.999 * 0.999);
  EXPECT_NEAR(p.data().at<double>(0, 0), -0.1 * mhat / (std::sqrt(vhat) + 1e-8), 1e-12);
  EXPECT_EQ(opt.state(0).step, 2);
}

TEST(OptimLazy, EveryRowOnceIsDenseAdamBitwise) {
  for (bool decoupled : {false, true}) {
    Parameter a = table_param(4, 3);
    Parameter b = table_param(4, 3);
    std::unique_ptr<Optimizer> lazy, dense;
    if (decoupled) {
      lazy = std::make_unique<LazyAdamW>(std::vector<Parameter*>{&a},
                                         AdamWOptions(0.05).amsgrad(true));
      dense =
          std::make_unique<AdamW>(std::vector<Parameter*>{&b}, AdamWOptions(0.05).amsgrad(true));
    } else {
      lazy = std::make_unique<LazyAdam>(std::vector<Parameter*>{&a},
                                        AdamOptions(0.05).weight_decay(0.1));
      dense =
          std::make_unique<Adam>(std::vector<Parameter*>{&b}, AdamOptions(0.05).weight_decay(0.1));
    }
    for (int s = 0; s < 5; ++s) {
      const double k = 0.3 * (s + 1);
      SparseGrad g = sparse_grad({2, 0, 3, 1}, {k, 1, -1, 2, -k, 0.5, 0.1, k, 3, -2, 1, k}, 4);
      a.zero_grad();
      b.zero_grad();
      a.accumulate_grad(g);
      b.accumulate_grad(g.to_dense());
      lazy->step();
      dense->step();
      EXPECT_TRUE(a.data().equal(b.data())) << "step " << s;
    }
  }
}

TEST(OptimLazy, LazyAdamWDecaysOnlyPresentRows) {
  Parameter p(Tensor::full({2, 1}, 1.0, DType::kFloat64));
  LazyAdamW opt({&p}, AdamWOptions(0.1).weight_decay(0.5));
  p.accumulate_grad(sparse_grad({0}, {0.0}, 2));  // g = 0: only the decay moves row 0
  opt.step();
  EXPECT_EQ(p.data().at<double>(0, 0), 1.0 * (1 - 0.1 * 0.5));
  EXPECT_EQ(p.data().at<double>(1, 0), 1.0);
}

TEST(OptimRowWise, OneAccumulatorPerRow) {
  Parameter p(Tensor::zeros({4, 2}, DType::kFloat64));
  RowWiseAdagrad opt({&p}, RowWiseAdagradOptions(0.5).initial_accumulator_value(1.0).eps(0.0));
  EXPECT_EQ(opt.state(0).tensors.at("sum").shape(), (Shape{4}));
  // Row 2, g = [3, 4]: mean(g²) = 12.5, sum = 13.5, θ = -0.5 / sqrt(13.5) * g.
  p.accumulate_grad(sparse_grad({2}, {3, 4}, 4));
  opt.step();
  const Tensor& sum = opt.state(0).tensors.at("sum");
  EXPECT_EQ(sum.at<double>(2), 13.5);
  EXPECT_EQ(sum.at<double>(0), 1.0);
  EXPECT_EQ(p.data().at<double>(2, 0), -(0.5 / std::sqrt(13.5)) * 3);
  EXPECT_EQ(p.data().at<double>(2, 1), -(0.5 / std::sqrt(13.5)) * 4);
  EXPECT_EQ(p.data().at<double>(1, 0), 0.0);
  // Duplicates are summed before squaring: rows {1: [1,1] + [1,1]} -> mean(g²) = 4.
  opt.zero_grad();
  p.accumulate_grad(sparse_grad({1, 1}, {1, 1, 1, 1}, 4));
  opt.step();
  EXPECT_EQ(sum.at<double>(1), 5.0);
  EXPECT_EQ(p.data().at<double>(1, 0), -(0.5 / std::sqrt(5.0)) * 2);
  // A dense gradient updates every row (float32 too).
  Parameter f(Tensor::zeros({2, 3}, DType::kFloat32));
  RowWiseAdagrad opt32({&f}, RowWiseAdagradOptions(1.0).eps(0.0));
  f.accumulate_grad(Tensor::from_vector<float>({1, 1, 1, 2, 2, 2}, {2, 3}));
  opt32.step();
  EXPECT_EQ(f.data().at<float>(0, 0), -1.0f);
  EXPECT_EQ(f.data().at<float>(1, 2), -1.0f);
}

TEST(OptimRowWise, RowsOfOneElementAreAdagrad) {
  Parameter a(Tensor::from_vector<double>({1, 2, 3}, {3}));
  Parameter b(Tensor::from_vector<double>({1, 2, 3}, {3}));
  RowWiseAdagrad rw({&a}, RowWiseAdagradOptions(0.1));
  Adagrad ada({&b}, AdagradOptions(0.1));
  for (int s = 0; s < 4; ++s) {
    const Tensor g = Tensor::from_vector<double>({0.5 * s, -1, 2}, {3});
    a.zero_grad();
    b.zero_grad();
    a.accumulate_grad(g);
    b.accumulate_grad(g);
    rw.step();
    ada.step();
    for (std::int64_t k = 0; k < 3; ++k)
      EXPECT_NEAR(a.data().get_double(k), b.data().get_double(k), 1e-15);
  }
}

// ---------------------------------------------------------------------------------------------
// SparseAdam specifics; end to end with an Embedding module

TEST(OptimSparseAdam, EmptyGradientAdvancesStepOnly) {
  Parameter p = table_param(5, 2);
  const Tensor before = p.data().clone();
  SparseAdam opt({&p});
  p.accumulate_grad(SparseGrad(5, 2, DType::kFloat64));
  opt.step();
  EXPECT_EQ(opt.state(0).step, 1);
  EXPECT_TRUE(p.data().equal(before));
}

TEST(OptimEndToEnd, EmbeddingWithSparseGradients) {
  Embedding table(EmbeddingOptions(8, 3).sparse(true));
  const Tensor before = table.weight().clone();
  SparseAdam opt({&table.parameter()}, SparseAdamOptions(0.1));
  const Tensor ids = Tensor::from_vector<std::int64_t>({1, 5, 1}, {3});
  Tensor out = table(ids);
  table.backward(ids, Tensor::full({3, 3}, 1.0, DType::kFloat32));
  ASSERT_TRUE(table.parameter().grad_is_sparse());
  opt.step();
  // Loss sum(out): every touched element moves by -lr (Adam's first step is lr * sign(g)).
  EXPECT_NEAR(table.weight().at<float>(1, 0), before.at<float>(1, 0) - 0.1f, 1e-6);
  EXPECT_NEAR(table.weight().at<float>(5, 2), before.at<float>(5, 2) - 0.1f, 1e-6);
  EXPECT_EQ(table.weight().at<float>(0, 0), before.at<float>(0, 0));
}

}  // namespace
