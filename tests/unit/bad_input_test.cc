// Bad input never crashes and never half-applies: one test per class of defect found by trying
// the public API as an attacker would (hostile state files, failed steps, frozen modules, values
// outside an enum, memory the caller hands over, allocation before validation, operations that
// throw after writing, legal input that crashed, incomplete messages). Each case checks the
// exception type, the message, and that nothing changed. Threads: concurrency_test.cc.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "emb/emb.h"
#include "expect_error.h"

namespace {

using namespace emb;
using namespace emb::optim;
using emb::testing::expect_error;

constexpr std::int64_t kBig = std::int64_t{1} << 40;

Tensor longs(std::vector<std::int64_t> v) {
  const auto n = static_cast<std::int64_t>(v.size());
  return Tensor::from_vector<std::int64_t>(v, {n});
}

Parameter table_param(std::int64_t rows, std::int64_t dim) {
  Tensor t = Tensor::empty({rows, dim}, DType::kFloat64);
  for (std::int64_t k = 0; k < t.numel(); ++k) t.set_double(k, 0.5 * static_cast<double>(k) - 1);
  return Parameter(t);
}

// Writes optimizer state files byte by byte (the layout of docs/OPTIMIZERS.md), so that a test
// can say exactly which field is hostile.
struct StateFile {
  std::string bytes;

  template <typename T>
  StateFile& put(T v) {
    bytes.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  StateFile& str(const std::string& s) {
    put<std::uint32_t>(static_cast<std::uint32_t>(s.size()));
    bytes += s;
    return *this;
  }
  StateFile(const std::string& optimizer, std::uint64_t num_params, double lr = 0.1) {
    bytes = "EMBOPTIM";
    put<std::uint32_t>(1).str(optimizer).put<double>(lr).put<std::uint64_t>(num_params);
  }
  StateFile& param(std::int64_t step, std::uint32_t num_tensors) {
    return put<std::int64_t>(step).put<std::uint32_t>(num_tensors);
  }
  // A tensor header (name, dtype, shape) followed by the given elements (none: a header only).
  template <typename T>
  StateFile& tensor(const std::string& key, DType dtype, const Shape& shape,
                    const std::vector<T>& values) {
    str(key).put<std::uint8_t>(static_cast<std::uint8_t>(dtype));
    put<std::uint32_t>(static_cast<std::uint32_t>(shape.size()));
    for (std::int64_t d : shape) put<std::int64_t>(d);
    for (T v : values) put<T>(v);
    return *this;
  }
  std::stringstream stream() const { return std::stringstream(bytes); }
};

// ---------------------------------------------------------------------------------------------
// 1. Optimizer state files are untrusted input.

TEST(BadInput, StateFilesAreUntrusted) {
  // SGD's row-sparse momentum with a repeated row: the next step would have written past the
  // buffer. Refused at load, state untouched, and the optimizer keeps working.
  Parameter p = table_param(4, 2);
  SGD sgd({&p}, SGDOptions(0.1).momentum(0.9));
  auto dup = StateFile("SGD", 1)
                 .param(1, 3)
                 .tensor<std::int64_t>("momentum_rows", DType::kInt64, {2}, {1, 1})
                 .tensor<std::int64_t>("momentum_rows_used", DType::kInt64, {}, {2})
                 .tensor<double>("momentum_values", DType::kFloat64, {2, 2}, {1, 2, 3, 4})
                 .stream();
  expect_error<FormatError>([&] { sgd.load(dup); }, {"SGD::load", "momentum row 1 appears twice"});
  EXPECT_TRUE(sgd.state(0).tensors.empty());
  p.accumulate_grad(SparseGrad(longs({1, 3}), Tensor::full({2, 2}, 1.0, DType::kFloat64), 4));
  sgd.step();
  EXPECT_EQ(sgd.state(0).tensors.at("momentum_values").size(0), 2);

  // A step count of INT64_MAX (the next step would overflow).
  Adam adam({&p});
  auto max_step = StateFile("Adam", 1).param(std::numeric_limits<std::int64_t>::max(), 0).stream();
  expect_error<FormatError>([&] { adam.load(max_step); },
                            {"Adam::load", "step 9223372036854775807 is out of range"});

  // An integer tensor where a float one belongs (the next step would have thrown half-way).
  const std::vector<std::int64_t> eight_longs(8, 1);
  const std::vector<double> eight(8, 0.5);
  auto int_state = StateFile("Adam", 1)
                       .param(1, 2)
                       .tensor<std::int64_t>("exp_avg", DType::kInt64, {4, 2}, eight_longs)
                       .tensor<double>("exp_avg_sq", DType::kFloat64, {4, 2}, eight)
                       .stream();
  expect_error<FormatError>([&] { adam.load(int_state); },
                            {"Adam::load", "\"exp_avg\"", "int64", "float64"});

  // A name seen twice (was silently ignored), and a name the optimizer does not know.
  auto twice = StateFile("Adagrad", 1)
                   .param(0, 2)
                   .tensor<double>("sum", DType::kFloat64, {4, 2}, eight)
                   .tensor<double>("sum", DType::kFloat64, {4, 2}, eight)
                   .stream();
  Adagrad ada({&p});
  const Tensor sum0 = ada.state(0).tensors.at("sum").clone();
  expect_error<FormatError>([&] { ada.load(twice); }, {"state \"sum\" appears twice"});
  EXPECT_TRUE(ada.state(0).tensors.at("sum").equal(sum0));
  auto unknown = StateFile("Adam", 1)
                     .param(1, 3)
                     .tensor<double>("exp_avg", DType::kFloat64, {4, 2}, eight)
                     .tensor<double>("exp_avg_sq", DType::kFloat64, {4, 2}, eight)
                     .tensor<double>("zzz", DType::kFloat64, {4, 2}, eight)
                     .stream();
  expect_error<FormatError>([&] { adam.load(unknown); }, {"unknown state \"zzz\""});

  // A size field claiming 2^40 rows (allowed by the parameter's shape) over a few bytes: the
  // loader pays only for the bytes that exist (ASan would abort on an 8 TiB allocation).
  Parameter wide(Tensor::empty({kBig, 0}, DType::kFloat32));
  SGD wide_sgd({&wide}, SGDOptions(0.1).momentum(0.5));
  auto claims = StateFile("SGD", 1)
                    .param(1, 1)
                    .tensor<std::int64_t>("momentum_rows", DType::kInt64, {kBig}, {1, 2, 3})
                    .stream();
  expect_error<FormatError>([&] { wide_sgd.load(claims); }, {"truncated state"});

  // A directory: IoError naming the path.
  const std::string dir = ::testing::TempDir();
  expect_error<IoError>([&] { adam.load(dir); }, {"Adam::load", dir, "directory"});
  EXPECT_EQ(adam.state(0).step, 0);
}

// ---------------------------------------------------------------------------------------------
// 2. A step that throws has changed nothing: every parameter is checked before the first write.

TEST(BadInput, FailedStepChangesNothing) {
  Parameter a = table_param(3, 2);
  Parameter b = table_param(4, 2);
  Adam adam({&a, &b});
  // Parameter 1's state sits at the largest step count: its next step cannot be counted.
  const std::vector<double> zeros8(8, 0.0);
  auto at_limit = StateFile("Adam", 2, 0.01)
                      .param(0, 0)
                      .param(Optimizer::kMaxStep, 2)
                      .tensor<double>("exp_avg", DType::kFloat64, {4, 2}, zeros8)
                      .tensor<double>("exp_avg_sq", DType::kFloat64, {4, 2}, zeros8)
                      .stream();
  adam.load(at_limit);
  a.accumulate_grad(Tensor::full({3, 2}, 0.5, DType::kFloat64));
  b.accumulate_grad(Tensor::full({4, 2}, 0.5, DType::kFloat64));
  const Tensor a0 = a.data().clone();
  const Tensor b0 = b.data().clone();
  expect_error<ValueError>([&] { adam.step(); },
                           {"Adam: parameter 1: the step count 9007199254740992", "2^53"});
  EXPECT_TRUE(a.data().equal(a0)) << "parameter 0 moved before parameter 1 was checked";
  EXPECT_TRUE(b.data().equal(b0));
  EXPECT_EQ(adam.state(0).step, 0);
  EXPECT_TRUE(adam.state(0).tensors.empty());
  EXPECT_EQ(adam.state(1).step, Optimizer::kMaxStep);

  // Parameter 1's tensor replaced by one its state does not fit: refused before parameter 0.
  Parameter c = table_param(3, 2);
  Parameter d = table_param(4, 2);
  Adagrad ada({&c, &d});
  d.set_data(Tensor::zeros({5, 2}, DType::kFloat64));
  c.accumulate_grad(Tensor::full({3, 2}, 0.5, DType::kFloat64));
  d.accumulate_grad(Tensor::full({5, 2}, 0.5, DType::kFloat64));
  const Tensor c0 = c.data().clone();
  const Tensor sum0 = ada.state(0).tensors.at("sum").clone();
  expect_error<ValueError>([&] { ada.step(); },
                           {"Adagrad: parameter 1: the parameter no longer matches"});
  EXPECT_TRUE(c.data().equal(c0));
  EXPECT_TRUE(ada.state(0).tensors.at("sum").equal(sum0));
  EXPECT_EQ(ada.state(0).step, 0);
}

// ---------------------------------------------------------------------------------------------
// 3. Frozen modules validate the arguments of backward like trainable ones.

TEST(BadInput, FrozenModulesValidateBackward) {
  Tensor w = Tensor::full({5, 2}, 1.0, DType::kFloat32);
  EmbeddingBag bag = EmbeddingBag::from_pretrained(
      w, EmbeddingBagFromPretrainedOptions().mode(EmbeddingBagMode::kSum));
  ASSERT_FALSE(bag.parameter().requires_grad());
  const Tensor input = longs({1, 2, 3, 4});
  const Tensor offsets = longs({0, 2});
  const Tensor grad = Tensor::full({2, 2}, 1.0, DType::kFloat32);
  const Tensor before = bag.weight().clone();
  expect_error<IndexError>(
      [&] {
        bag.backward(longs({1, 2, 9, 4}), offsets, grad);
      },
      {"EmbeddingBag::backward", "input[2] = 9", "5 rows"});
  expect_error<ValueError>(
      [&] {
        bag.backward(input, longs({0, 3, 2}), grad);
      },
      {"offsets[2] = 2 is smaller than offsets[1] = 3"});
  expect_error<ValueError>(
      [&] {
        bag.backward(input, offsets, Tensor::full({3, 2}, 1.0, DType::kFloat32));
      },
      {"grad_output has shape [3, 2], expected [2, "});
  expect_error<ValueError>(
      [&] { bag.backward(Tensor::full({4}, 1.0, DType::kFloat32), offsets, grad); },
      {"input must be int32 or int64, got float32"});
  expect_error<ValueError>(
      [&] { bag.backward(input, offsets, grad, Tensor::full({3}, 1.0, DType::kFloat32)); },
      {"per_sample_weights has shape [3]"});
  EXPECT_TRUE(bag.weight().equal(before));
  EXPECT_FALSE(bag.parameter().has_grad());
  // A valid call on the frozen module still returns the per_sample_weights gradient.
  const Tensor psw_grad = bag.backward(input, offsets, grad, Tensor::full({4}, 1.0, w.dtype()));
  EXPECT_EQ(psw_grad.get_double(0), 2.0);

  Embedding table = Embedding::from_pretrained(w);
  expect_error<ValueError>(
      [&] {
        table.backward(longs({1}), Tensor::full({1, 2}, 1.0, DType::kFloat64));
      },
      {"Embedding::backward", "grad_output has dtype float64, the weight float32"});
  expect_error<ValueError>(
      [&] {
        table.backward(longs({1}), Tensor::full({1, 3}, 1.0, DType::kFloat32));
      },
      {"Embedding::backward", "last dimension must be 2"});
  EXPECT_FALSE(table.parameter().has_grad());
}

// ---------------------------------------------------------------------------------------------
// 4. Enum values that name no enumerator are refused.

TEST(BadInput, ValuesOutsideAnEnum) {
  const auto bad_dtype = static_cast<DType>(17);
  EXPECT_FALSE(is_valid_dtype(bad_dtype));
  EXPECT_EQ(dtype_name(bad_dtype), "invalid");
  expect_error<ValueError>([&] { Tensor::empty({4}, bad_dtype); },
                           {"Tensor::empty: dtype code 17 is not a DType"});
  expect_error<ValueError>([&] { Tensor::full({4}, 1.0, bad_dtype); }, {"Tensor::full"});
  std::int64_t buffer[4] = {};
  expect_error<ValueError>([&] { Tensor::view(buffer, {4}, bad_dtype); }, {"Tensor::view"});
  expect_error<ValueError>([&] { Tensor::zeros({2}, DType::kFloat32).to(bad_dtype); },
                           {"Tensor::to"});
  expect_error<ValueError>([&] { SparseGrad(3, 2, bad_dtype); }, {"SparseGrad", "code 17"});
  expect_error<ValueError>([&] { element_size(bad_dtype); }, {"element_size", "17"});

  const auto bad_mode = static_cast<EmbeddingBagMode>(7);
  EXPECT_STREQ(mode_name(bad_mode), "invalid");
  const Tensor w = Tensor::full({3, 2}, 1.0, DType::kFloat32);
  expect_error<ValueError>(
      [&] {
        embedding_bag(longs({0, 1}), w, longs({0}), EmbeddingBagFuncOptions().mode(bad_mode));
      },
      {"embedding_bag: mode 7 is not an EmbeddingBagMode"});
  expect_error<ValueError>([&] { EmbeddingBag(EmbeddingBagOptions(3, 2).mode(bad_mode)); },
                           {"EmbeddingBag: mode 7"});
  expect_error<ValueError>(
      [&] {
        embedding_bag_sparse_backward(Tensor::zeros({1, 2}, DType::kFloat32), longs({0}),
                                      longs({0}), 3, EmbeddingBagFuncOptions().mode(bad_mode));
      },
      {"embedding_bag_sparse_backward: mode 7"});
}

// ---------------------------------------------------------------------------------------------
// 5. Memory the caller hands over: alignment, ids inside the written table, ids changed later.

TEST(BadInput, MemoryTheCallerHandsOver) {
  alignas(8) unsigned char raw[64] = {};
  expect_error<ValueError>([&] { Tensor::view(raw + 1, {4}, DType::kFloat32); },
                           {"Tensor::view", "not aligned to 4 bytes", "float32"});
  expect_error<ValueError>([&] { Tensor::view(raw + 4, {2}, DType::kInt64); },
                           {"not aligned to 8 bytes"});
  EXPECT_NO_THROW(Tensor::view(raw + 2, {2}, DType::kFloat16));

  // Ids living in the last row of the table a max_norm lookup renormalizes. A negative max_norm
  // rescales every row (by about -1e7), which turns the ids' bits into huge negative numbers:
  // the lookup must use the ids as they were when it was called.
  alignas(8) double table[8] = {1, 2, 3, 4, 5, 6, 0, 0};
  const std::int64_t ids_bits[2] = {3, 1};
  std::memcpy(&table[6], ids_bits, sizeof ids_bits);
  const Tensor weight = Tensor::view(table, {4, 2}, DType::kFloat64);
  const Tensor ids = Tensor::view(&table[6], {2}, DType::kInt64);
  const Tensor out = embedding(ids, weight, EmbeddingFuncOptions().max_norm(-1.0));
  EXPECT_TRUE(out.select(0).equal(weight.select(3).clone()));
  EXPECT_TRUE(out.select(1).equal(weight.select(1).clone()));
  EXPECT_LT(out.get_double(2), 0.0) << "row 1 was renormalized (scaled by a negative factor)";

  alignas(8) double bag_table[8] = {1, 2, 3, 4, 5, 6, 0, 0};
  std::memcpy(&bag_table[6], ids_bits, sizeof ids_bits);
  const Tensor bag_weight = Tensor::view(bag_table, {4, 2}, DType::kFloat64);
  const Tensor bag_ids = Tensor::view(&bag_table[6], {2}, DType::kInt64);
  const Tensor pooled =
      embedding_bag(bag_ids, bag_weight, longs({0, 1}),
                    EmbeddingBagFuncOptions().mode(EmbeddingBagMode::kSum).max_norm(-1.0));
  EXPECT_TRUE(pooled.select(1).equal(bag_weight.select(1).clone()));

  // A SparseGrad keeps its own ids: changing the caller's tensor, or the tensor indices()
  // returns, cannot send an optimizer outside the table.
  Tensor caller_ids = longs({0, 2});
  const SparseGrad g(caller_ids, Tensor::full({2, 2}, 1.0, DType::kFloat64), 4);
  caller_ids.data<std::int64_t>()[0] = kBig;
  g.indices().data<std::int64_t>()[1] = -kBig;
  EXPECT_TRUE(g.indices().equal(longs({0, 2})));
  Parameter p = table_param(4, 2);
  const Tensor p0 = p.data().clone();
  p.accumulate_grad(g);
  SGD({&p}, SGDOptions(1.0)).step();
  EXPECT_EQ(p.data().get_double(0), p0.get_double(0) - 1);  // row 0 moved
  EXPECT_EQ(p.data().get_double(4), p0.get_double(4) - 1);  // row 2 moved
  EXPECT_EQ(p.data().get_double(2), p0.get_double(2));      // row 1 did not
}

// ---------------------------------------------------------------------------------------------
// 6. Allocation bounded by the input, and only after validation.

TEST(BadInput, AllocationBoundedByTheInput) {
  // The value count is checked before the shape is allocated (was std::bad_alloc).
  expect_error<ValueError>(
      [&] {
        Tensor::from_vector<float>({1, 2}, {kBig});
      },
      {"Tensor::from_vector: 2 values do not fill shape"});
  // A shape with a zero has no elements, whatever its other sizes.
  EXPECT_EQ(Tensor::empty({std::int64_t{1} << 62, 0}, DType::kFloat64).numel(), 0);
  EXPECT_EQ(Tensor::empty({0, std::int64_t{1} << 62}, DType::kFloat64).numel(), 0);
  // One id on a 2^40-row table, with scale_grad_by_freq: one gradient row, no table-sized
  // counters.
  const SparseGrad one = embedding_sparse_backward(Tensor::full({1, 2}, 4.0, DType::kFloat32),
                                                   longs({kBig - 1}), kBig, std::nullopt, true);
  EXPECT_EQ(one.nnz(), 1);
  EXPECT_EQ(one.num_rows(), kBig);
  EXPECT_EQ(one.values().get_double(0), 4.0);
  // Empty bags over a 2^40-row table.
  const SparseGrad none = embedding_bag_sparse_backward(
      Tensor::zeros({2, 3}, DType::kFloat32), longs({}), longs({0, 0}), kBig,
      EmbeddingBagFuncOptions().mode(EmbeddingBagMode::kMean).scale_grad_by_freq(true));
  EXPECT_EQ(none.nnz(), 0);
  EXPECT_EQ(none.dim(), 3);
}

// ---------------------------------------------------------------------------------------------
// 7. Operations that used to throw after writing.

TEST(BadInput, ResetParametersChecksBeforeDrawing) {
  Embedding m(EmbeddingOptions(10, 3).padding_idx(8));
  m.parameter().set_data(Tensor::zeros({4, 3}, DType::kFloat32));
  Generator gen(7);
  const Generator gen0 = gen;
  expect_error<IndexError>([&] { m.reset_parameters(gen); },
                           {"Embedding::reset_parameters: padding_idx = 8", "4 rows"});
  EXPECT_TRUE(m.weight().equal(Tensor::zeros({4, 3}, DType::kFloat32)));
  Generator check = gen0;
  EXPECT_EQ(gen.next_u64(), check.next_u64()) << "the generator advanced";

  EmbeddingBag bag(EmbeddingBagOptions(10, 3).padding_idx(9));
  bag.parameter().set_data(Tensor::zeros({2, 3}, DType::kFloat32));
  const Generator gen1 = gen;
  expect_error<IndexError>([&] { bag.reset_parameters(gen); },
                           {"EmbeddingBag::reset_parameters: padding_idx = 9"});
  bag.parameter().set_data(Tensor());
  expect_error<ValueError>([&] { bag.reset_parameters(gen); }, {"weight is undefined"});
  EXPECT_TRUE(bag.weight().defined() == false);
  check = gen1;
  EXPECT_EQ(gen.next_u64(), check.next_u64()) << "the generator advanced";
}

// ---------------------------------------------------------------------------------------------
// 8. Legal input that crashed: printing walks the dimensions without recursion.

TEST(BadInput, PrintingVeryHighRankTensors) {
  const std::size_t rank = 50000;
  const Tensor t = Tensor::full(Shape(rank, 1), 2.5, DType::kFloat32);
  EXPECT_EQ(t.to_string(),
            "tensor(" + std::string(rank, '[') + "2.5000" + std::string(rank, ']') + ")");
  // A few real dimensions among many of size 1 keep PyTorch's layout.
  Shape shape(200, 1);
  shape[150] = 2;
  const Tensor u = Tensor::from_vector<std::int64_t>({1, 2}, shape);
  const std::string s = u.to_string();
  EXPECT_EQ(s.substr(0, 7 + 151), "tensor(" + std::string(151, '['));
  EXPECT_NE(s.find("1" + std::string(49, ']') + "," + std::string(49, '\n')), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// 9. Messages name the operation, the position and the value.

TEST(BadInput, MessagesNameOperationPositionValue) {
  const double nan = std::nan("");
  const double inf = std::numeric_limits<double>::infinity();
  expect_error<ValueError>([&] { Tensor::full({2}, nan, DType::kInt32); },
                           {"Tensor::full: value nan does not fit int32", "-2147483648"});
  const Tensor f = Tensor::from_vector<float>({1, 2, static_cast<float>(inf), 4}, {2, 2});
  expect_error<ValueError>([&] { f.to(DType::kInt64); },
                           {"Tensor::to: element [1][0] = inf does not fit int64"});
  const Tensor i32 = Tensor::zeros({2, 2}, DType::kInt32);
  expect_error<ValueError>([&] { i32.copy_(f); }, {"Tensor::copy_: element [1][0] = inf"});
  expect_error<ValueError>([&] { i32.fill_(-inf); }, {"Tensor::fill_: value -inf"});
  expect_error<ValueError>([&] { i32.set_double(3, 3e9); },
                           {"Tensor::set_double: value for flat index 3: 3000000000.0"});
  EXPECT_TRUE(i32.equal(Tensor::zeros({2, 2}, DType::kInt32)));
  expect_error<ValueError>(
      [&] { Tensor::from_vector<std::int64_t>({std::int64_t{1} << 40}, {1}).to(DType::kInt32); },
      {"Tensor::to: element [0] = 1099511627776.0 does not fit int32"});

  Parameter p = table_param(2, 2);
  expect_error<ValueError>([&] { p.accumulate_grad(Tensor()); },
                           {"Parameter::accumulate_grad: grad is undefined"});
  Parameter empty;
  expect_error<ValueError>([&] { empty.accumulate_grad(Tensor::zeros({2}, DType::kFloat32)); },
                           {"Parameter::accumulate_grad: the parameter has no tensor"});
  Generator gen;
  expect_error<ValueError>([&] { gen.normal_(Tensor()); },
                           {"Generator::normal_: tensor is undefined"});
  expect_error<ValueError>([&] { SparseGrad(3, -2, DType::kFloat32); },
                           {"SparseGrad: dim = -2 is negative"});
  expect_error<ValueError>(
      [&] {
        SparseGrad(longs({}), Tensor::zeros({0, 2}, DType::kFloat32), -5);
      },
      {"SparseGrad: num_rows = -5 is negative"});
  Adagrad ada({&p});
  const std::string dir = ::testing::TempDir();
  expect_error<IoError>([&] { ada.load(dir); }, {"Adagrad::load: cannot read " + dir});
}

}  // namespace
