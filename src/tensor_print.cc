// PyTorch's tensor printing (torch/_tensor_str.py, default print options): precision 4,
// summarization above 1000 elements with 3 edge items, line width 80.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "emb/tensor.h"

namespace emb {

namespace {

constexpr int kPrecision = 4;
constexpr std::int64_t kThreshold = 1000;
constexpr std::int64_t kEdgeItems = 3;
constexpr std::size_t kLineWidth = 80;

// Python's "{:.Nf}" / "{:.Ne}" / "{:.0f}", including its spelling of non-finite values.
std::string py_format(double v, char kind, int precision) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  const char fmt[] = {'%', '.', '*', kind, '\0'};
  std::snprintf(buf, sizeof buf, fmt, precision, v);
  return buf;
}

// The _Formatter: decides int / fixed / scientific mode and the common width.
class Formatter {
 public:
  // t: the tensor; shown: the flat positions that will be printed.
  Formatter(const Tensor& t, const std::vector<std::int64_t>& shown)
      : t_(t), floating_(is_floating(t.dtype())) {
    if (!floating_) {
      for (std::int64_t i : shown) max_width_ = std::max(max_width_, int_str(i).size());
      return;
    }
    std::vector<double> finite;
    for (std::int64_t i : shown) {
      const double v = t.get_double(i);
      if (std::isfinite(v) && v != 0) finite.push_back(v);
    }
    if (finite.empty()) return;
    double lo = std::abs(finite[0]), hi = lo;
    for (double v : finite) {
      lo = std::min(lo, std::abs(v));
      hi = std::max(hi, std::abs(v));
      if (v != std::ceil(v)) int_mode_ = false;
    }
    if (int_mode_) {
      sci_mode_ = hi / lo > 1000.0 || hi > 1.0e8;
    } else {
      sci_mode_ = hi / lo > 1000.0 || hi > 1.0e8 || lo < 1.0e-4;
    }
    for (double v : finite) {
      std::size_t w;
      if (sci_mode_)
        w = py_format(v, 'e', kPrecision).size();
      else if (int_mode_)
        w = py_format(v, 'f', 0).size() + 1;
      else
        w = py_format(v, 'f', kPrecision).size();
      max_width_ = std::max(max_width_, w);
    }
  }

  std::size_t width() const { return max_width_; }

  // The element at flat position i, padded to the common width.
  std::string format(std::int64_t i) const {
    std::string s;
    const double v = floating_ ? t_.get_double(i) : 0.0;
    if (!floating_) {
      s = int_str(i);
    } else if (sci_mode_) {
      s = py_format(v, 'e', kPrecision);
    } else if (int_mode_) {
      s = py_format(v, 'f', 0);
      if (std::isfinite(v)) s += ".";
    } else {
      s = py_format(v, 'f', kPrecision);
    }
    if (s.size() < max_width_) s.insert(0, max_width_ - s.size(), ' ');
    return s;
  }

 private:
  // Integers are read in their own type: a double cannot hold every int64.
  std::string int_str(std::int64_t i) const {
    if (t_.dtype() == DType::kInt64) return std::to_string(t_.data<std::int64_t>()[i]);
    return std::to_string(static_cast<std::int64_t>(t_.get_double(i)));  // int32, int8, uint8
  }

  const Tensor& t_;
  bool floating_;
  bool int_mode_ = true;
  bool sci_mode_ = false;
  std::size_t max_width_ = 1;
};

// Walks the shown sub-tensors with an explicit stack, not recursion: a tensor may have tens of
// thousands of dimensions (of size 1), and the call stack must not grow with the rank.
class Printer {
 public:
  explicit Printer(const Tensor& t)
      : t_(t), dims_(t.shape().size()), summarize_(t.numel() > kThreshold), strides_(dims_, 1) {
    for (std::size_t d = dims_; d-- > 1;) strides_[d - 1] = strides_[d] * t.shape()[d];
    formatter_.emplace(t, shown_positions());
  }

  std::string body(std::size_t indent) const {
    if (dims_ == 0) return formatter_->format(0);
    struct Frame {
      std::vector<std::int64_t> rows;  // the shown rows of this dimension (-1: "...")
      std::size_t next = 0;
      std::int64_t base = 0;
    };
    std::vector<Frame> stack;
    std::string s;
    // Opens the sub-tensor at depth d: a vector is written whole, a higher one gets a frame.
    auto open = [&](std::size_t d, std::int64_t base) {
      if (d + 1 == dims_) {
        s += vector_str(base, indent + d);
      } else {
        s += "[";
        stack.push_back(Frame{shown_rows(d), 0, base});
      }
    };
    open(0, 0);
    while (!stack.empty()) {
      const std::size_t d = stack.size() - 1;
      Frame& f = stack.back();
      if (f.next == f.rows.size()) {
        s += "]";
        stack.pop_back();
        continue;
      }
      // Between sub-tensors: ",", one newline per remaining dimension, the indent.
      if (f.next > 0)
        s += "," + std::string(dims_ - d - 1, '\n') + std::string(indent + d + 1, ' ');
      const std::int64_t i = f.rows[f.next++];
      const std::int64_t base = f.base + i * strides_[d];
      if (i < 0)
        s += "...";
      else
        open(d + 1, base);  // may reallocate the stack: f is not used after this
    }
    return s;
  }

 private:
  std::vector<std::int64_t> shown_rows(std::size_t d) const {
    const std::int64_t n = t_.shape()[d];
    std::vector<std::int64_t> rows;
    if (summarize_ && n > 2 * kEdgeItems) {
      for (std::int64_t i = 0; i < kEdgeItems; ++i) rows.push_back(i);
      rows.push_back(-1);  // the "..." marker
      for (std::int64_t i = n - kEdgeItems; i < n; ++i) rows.push_back(i);
    } else {
      for (std::int64_t i = 0; i < n; ++i) rows.push_back(i);
    }
    return rows;
  }

  // The flat positions of every printed element, in printing order (an odometer over the
  // shown rows of each dimension).
  std::vector<std::int64_t> shown_positions() const {
    if (dims_ == 0) return {0};
    std::vector<std::vector<std::int64_t>> rows(dims_);
    for (std::size_t d = 0; d < dims_; ++d) {
      for (std::int64_t i : shown_rows(d)) {
        if (i >= 0) rows[d].push_back(i);
      }
      if (rows[d].empty()) return {};
    }
    std::vector<std::size_t> at(dims_, 0);
    std::vector<std::int64_t> out;
    while (true) {
      std::int64_t pos = 0;
      for (std::size_t d = 0; d < dims_; ++d) pos += rows[d][at[d]] * strides_[d];
      out.push_back(pos);
      std::size_t d = dims_;
      while (d > 0 && ++at[d - 1] == rows[d - 1].size()) at[--d] = 0;
      if (d == 0) return out;
    }
  }

  // The last dimension at flat position base, wrapped at the line width.
  std::string vector_str(std::int64_t base, std::size_t indent) const {
    std::vector<std::string> parts;
    for (std::int64_t i : shown_rows(dims_ - 1)) {
      parts.push_back(i < 0 ? " ..." : formatter_->format(base + i));
    }
    const std::size_t element_length = formatter_->width() + 2;
    const std::size_t per_line =
        std::max<std::size_t>(1, (kLineWidth - std::min(indent, kLineWidth)) / element_length);
    std::string s = "[";
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (i) s += (i % per_line == 0) ? ",\n" + std::string(indent + 1, ' ') : ", ";
      s += parts[i];
    }
    return s + "]";
  }

  const Tensor& t_;
  std::size_t dims_;
  bool summarize_;
  std::vector<std::int64_t> strides_;  // flat distance between neighbours of each dimension
  std::optional<Formatter> formatter_;
};

}  // namespace

std::string Tensor::to_string() const {
  if (!defined()) return "tensor(undefined)";
  const std::string prefix = "tensor(";
  const std::size_t indent = prefix.size();
  std::vector<std::string> suffixes;
  const std::string dtype_suffix = "dtype=torch." + std::string(dtype_name(dtype_));
  std::string body;
  if (numel_ == 0) {
    if (dim() != 1) {
      std::string size = "size=(";
      for (std::size_t i = 0; i < shape_.size(); ++i) {
        size += (i ? ", " : "") + std::to_string(shape_[i]);
      }
      size += shape_.size() == 1 ? ",)" : ")";
      suffixes.push_back(size);
    }
    if (dtype_ != DType::kFloat32) suffixes.push_back(dtype_suffix);
    body = "[]";
  } else {
    if (dtype_ != DType::kFloat32 && dtype_ != DType::kInt64) suffixes.push_back(dtype_suffix);
    body = Printer(*this).body(indent);
  }
  std::string s = prefix + body;
  // Python: len(s) - s.rfind('\n') + 1, where rfind gives -1 when there is no newline.
  const std::size_t nl = s.rfind('\n');
  std::size_t last_line = nl == std::string::npos ? s.size() + 2 : s.size() - nl + 1;
  for (const std::string& suffix : suffixes) {
    if (last_line + suffix.size() + 2 > kLineWidth) {
      s += ",\n" + std::string(indent, ' ') + suffix;
      last_line = indent + suffix.size();
    } else {
      s += ", " + suffix;
      last_line += suffix.size() + 2;
    }
  }
  return s + ")";
}

}  // namespace emb
