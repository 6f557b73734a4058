// Row-wise quantized tables: validate once, then call the fast kernels (kernels/quant.cc; their
// twins are in kernels/ref/quant_ref.h).
#include "emb/quant.h"

#include <charconv>
#include <cmath>
#include <vector>

#include "bag_layout.h"
#include "index_check.h"
#include "kernels/fast.h"
#include "kernels/ref/embedding_bag_ref.h"
#include "kernels/ref/quant_ref.h"

namespace emb {

namespace {

// Calls fn(std::integral_constant<int, Bits>) for the table's type.
template <typename Fn>
decltype(auto) visit_bits(QuantType type, Fn&& fn) {
  if (type == QuantType::kInt4) return fn(std::integral_constant<int, 4>{});
  return fn(std::integral_constant<int, 8>{});
}

const std::uint8_t* table_bytes(const QuantizedTable& t) {
  return static_cast<const std::uint8_t*>(t.data.raw_data());
}

}  // namespace

const char* quant_type_name(QuantType type) {
  return type == QuantType::kInt4 ? "int4" : "int8";
}

std::int64_t quantized_row_bytes(QuantType type, std::int64_t dim) {
  return type == QuantType::kInt4 ? detail::ref::quant_row_bytes<4>(dim)
                                  : detail::ref::quant_row_bytes<8>(dim);
}

void QuantizedTable::validate(const char* op) const {
  if (!data.defined() || data.dtype() != DType::kUInt8 || data.dim() != 2) {
    throw ValueError(std::string(op) + ": a quantized table's data must be a 2-D uint8 tensor");
  }
  if (dim < 0 || dim > (std::int64_t{1} << 40)) {
    throw ValueError(std::string(op) + ": dim = " + std::to_string(dim) + " is out of range");
  }
  const std::int64_t rb = quantized_row_bytes(type, dim);
  if (data.size(1) != rb) {
    throw ValueError(std::string(op) + ": " + quant_type_name(type) + " rows of dim " +
                     std::to_string(dim) + " take " + std::to_string(rb) + " bytes, the data has " +
                     std::to_string(data.size(1)));
  }
}

QuantizedTable quantize_rowwise(const Tensor& weight, QuantType type) {
  const char* op = "quantize_rowwise";
  detail::check_weight_2d(weight, op);
  detail::check_floating(weight, op, "weight");
  const Tensor w = weight.dtype() == DType::kFloat32 ? weight : weight.to(DType::kFloat32);
  const std::int64_t rows = w.size(0);
  const std::int64_t dim = w.size(1);
  const float* x = w.data<float>();
  for (std::int64_t r = 0; r < rows; ++r) {
    float lo = 0, hi = 0;
    for (std::int64_t d = 0; d < dim; ++d) {
      const float v = x[r * dim + d];
      if (!std::isfinite(v)) {
        throw ValueError(std::string(op) + ": weight[" + std::to_string(r) + "][" +
                         std::to_string(d) + "] = " + std::to_string(v) + " is not finite");
      }
      lo = d == 0 ? v : std::min(lo, v);
      hi = d == 0 ? v : std::max(hi, v);
    }
    // int4 stores the bias and scale as float16 (largest finite 65504).
    if (type == QuantType::kInt4 &&
        (std::fabs(lo) > 65504.0f || (hi - lo) / 15.0f > 65504.0f || !std::isfinite(hi - lo))) {
      throw ValueError(std::string(op) + ": row " + std::to_string(r) + " spans [" +
                       std::to_string(lo) + ", " + std::to_string(hi) +
                       "], beyond what int4's float16 scale and bias hold");
    }
    if (type == QuantType::kInt8 && !std::isfinite(hi - lo)) {
      throw ValueError(std::string(op) + ": row " + std::to_string(r) +
                       " spans more than float32 can hold");
    }
  }
  QuantizedTable q;
  q.type = type;
  q.dim = dim;
  q.data = Tensor::empty({rows, quantized_row_bytes(type, dim)}, DType::kUInt8);
  visit_bits(type, [&](auto bits) {
    detail::ref::quantize_rows<decltype(bits)::value>(x, rows, dim, q.data.data<std::uint8_t>());
  });
  return q;
}

Tensor dequantize(const QuantizedTable& table) {
  table.validate("dequantize");
  Tensor out = Tensor::empty({table.rows(), table.dim}, DType::kFloat32);
  visit_bits(table.type, [&](auto bits) {
    detail::fast::quant_gather_rows<decltype(bits)::value, std::int64_t>(
        table_bytes(table), table.dim, nullptr, table.rows(), out.data<float>());
  });
  return out;
}

Tensor quantized_embedding(const Tensor& input, const QuantizedTable& table) {
  const char* op = "quantized_embedding";
  table.validate(op);
  detail::check_index_dtype(input, op, "indices");
  detail::check_ids_in_range(input, table.rows(), op, "indices");
  Shape shape = input.shape();
  shape.push_back(table.dim);
  Tensor out = Tensor::empty(shape, DType::kFloat32);
  visit_bits(table.type, [&](auto bits) {
    detail::visit_ids(input, [&](const auto* ids) {
      detail::fast::quant_gather_rows<decltype(bits)::value>(table_bytes(table), table.dim, ids,
                                                             input.numel(), out.data<float>());
    });
  });
  return out;
}

Tensor quantized_embedding_bag(const Tensor& input, const QuantizedTable& table,
                               const Tensor& offsets, const EmbeddingBagFuncOptions& options,
                               const Tensor& per_sample_weights) {
  const char* op = "quantized_embedding_bag";
  table.validate(op);
  if (options.max_norm()) {
    throw NotImplementedError(std::string(op) +
                              ": max_norm is not supported (a quantized table cannot be "
                              "renormalized in place)");
  }
  const detail::BagLayout plan = detail::plan_bag_layout(op, input, offsets, table.rows(), options,
                                                         per_sample_weights, DType::kFloat32);
  const auto num_bags = static_cast<std::int64_t>(plan.bounds.size()) - 1;
  const std::int64_t dim = table.dim;
  Tensor out = Tensor::empty({num_bags, dim}, DType::kFloat32);
  const Tensor psw =
      per_sample_weights.defined() ? per_sample_weights.reshape({plan.ids.numel()}) : Tensor();
  visit_bits(table.type, [&](auto bits) {
    constexpr int kBits = decltype(bits)::value;
    detail::visit_ids(plan.ids, [&](const auto* ids) {
      if (options.mode() == EmbeddingBagMode::kMax) {
        detail::fast::quant_bag_max<kBits>(table_bytes(table), dim, ids, plan.bounds.data(),
                                           num_bags, plan.padding_idx, out.data<float>());
        return;
      }
      detail::fast::quant_bag_sum<kBits>(
          table_bytes(table), dim, ids, plan.bounds.data(), num_bags, plan.padding_idx,
          psw.defined() ? psw.data<float>() : nullptr, out.data<float>());
    });
  });
  if (options.mode() == EmbeddingBagMode::kMean) {
    std::vector<std::int64_t> sizes(static_cast<std::size_t>(num_bags), 0);
    detail::visit_ids(plan.ids, [&](const auto* ids) {
      for (std::int64_t b = 0; b < num_bags; ++b) {
        for (std::int64_t i = plan.bounds[b]; i < plan.bounds[b + 1]; ++i) {
          sizes[static_cast<std::size_t>(b)] += ids[i] != plan.padding_idx;
        }
      }
    });
    detail::ref::bag_divide_by_size(out.data<float>(), dim, sizes.data(), num_bags);
  }
  return out;
}

std::pair<std::string, std::string> quantized_metadata(const std::string& name,
                                                       const QuantizedTable& table) {
  return {"emb.quant." + name,
          std::string(quant_type_name(table.type)) + ":" + std::to_string(table.dim)};
}

std::optional<QuantizedTable> quantized_from_metadata(
    const Tensor& data, const std::string& name, const std::map<std::string, std::string>& metadata,
    const std::string& file) {
  const auto it = metadata.find("emb.quant." + name);
  if (it == metadata.end()) return std::nullopt;
  const std::string& v = it->second;
  const std::size_t colon = v.find(':');
  QuantizedTable q;
  const std::string kind = v.substr(0, colon);
  std::int64_t dim = -1;
  bool ok = colon != std::string::npos && (kind == "int8" || kind == "int4");
  if (ok) {
    const auto r = std::from_chars(v.data() + colon + 1, v.data() + v.size(), dim);
    ok = r.ec == std::errc() && r.ptr == v.data() + v.size() && dim >= 0;
  }
  if (!ok) {
    throw FormatError("quantized table: " + file + ": metadata \"emb.quant." + name + "\" = \"" +
                      v + "\" is not \"int8:<dim>\" or \"int4:<dim>\"");
  }
  q.type = kind == "int4" ? QuantType::kInt4 : QuantType::kInt8;
  q.dim = dim;
  q.data = data;
  try {
    q.validate("quantized table");
  } catch (const ValueError& e) {
    throw FormatError("quantized table: " + file + ": tensor \"" + name + "\": " + e.what());
  }
  return q;
}

}  // namespace emb
