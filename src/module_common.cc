#include "module_common.h"

#include <charconv>
#include <cmath>

#include "index_check.h"

namespace emb::detail {

std::string py_float_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  // The shortest digits that round-trip, laid out as Python's repr(): positional for exponents
  // in [-4, 16), otherwise d.ddde-XX.
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  const std::string sci(buf, res.ptr);  // "-1.2345e-05"
  const std::size_t e_pos = sci.find('e');
  const bool negative = sci[0] == '-';
  std::string digits;
  for (std::size_t k = negative ? 1 : 0; k < e_pos; ++k) {
    if (sci[k] != '.') digits += sci[k];
  }
  const int exponent = std::stoi(sci.substr(e_pos + 1));
  std::string out = negative ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out += "0." + std::string(static_cast<std::size_t>(-exponent - 1), '0') + digits;
    } else if (static_cast<int>(digits.size()) <= exponent + 1) {
      out +=
          digits + std::string(static_cast<std::size_t>(exponent + 1) - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, static_cast<std::size_t>(exponent + 1)) + "." +
             digits.substr(static_cast<std::size_t>(exponent + 1));
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  const int magnitude = exponent < 0 ? -exponent : exponent;
  out += std::string(exponent < 0 ? "e-" : "e+") + (magnitude < 10 ? "0" : "") +
         std::to_string(magnitude);
  return out;
}

Parameter make_module_weight(const Tensor& given, std::int64_t num, std::int64_t dim,
                             const char* module) {
  checked_numel({num, dim}, module);
  if (!given.defined()) return Parameter(Tensor::empty({num, dim}, DType::kFloat32));
  if (given.shape() != Shape{num, dim}) {
    throw ValueError(std::string(module) + ": _weight has shape " + shape_to_string(given.shape()) +
                     ", expected [" + std::to_string(num) + ", " + std::to_string(dim) +
                     "] (num_embeddings, embedding_dim)");
  }
  return Parameter(given, is_floating(given.dtype()));
}

std::optional<std::int64_t> module_padding_idx(std::optional<std::int64_t> padding_idx,
                                               std::int64_t num, const char* module) {
  if (!padding_idx) return std::nullopt;
  return normalize_padding_idx(padding_idx, num, module);
}

void check_reset_weight(const Tensor& weight, std::optional<std::int64_t> padding_idx,
                        const char* op) {
  check_weight_2d(weight, op);
  check_floating(weight, op, "weight");
  if (padding_idx && *padding_idx >= weight.size(0)) {
    throw IndexError(std::string(op) + ": padding_idx = " + std::to_string(*padding_idx) +
                     " is out of range for the weight's " + std::to_string(weight.size(0)) +
                     " rows (the weight was replaced by a smaller one)");
  }
}

void check_pretrained(const Tensor& embeddings, const char* what) {
  if (!embeddings.defined() || embeddings.dim() != 2) {
    throw ValueError(std::string(what) + ": embeddings must be 2-D, got shape " +
                     (embeddings.defined() ? shape_to_string(embeddings.shape()) : "undefined"));
  }
}

}  // namespace emb::detail
