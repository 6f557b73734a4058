// emb/tensor.h — contiguous n-d storage: dtype, shape, owning or viewing memory.
//
// A Tensor is a handle, like torch::Tensor: copying it shares the storage, clone() copies the
// elements. It is storage, not a math library: only what the embedding operations need.
// Threads: concurrent reads of one storage are safe; a write (fill_, copy_, set_double, a write
// through data()) must not overlap any other access to the same storage.
//
//   emb::Tensor w = emb::Tensor::from_vector<float>({1, 2.3f, 3, 4, 5.1f, 6.3f}, {2, 3});
//   w.at<float>(1, 2) = 7;           // element access, bounds-checked
//   std::cout << w;                  // tensor([[1.0000, 2.3000, 3.0000],
//                                    //         [4.0000, 5.1000, 7.0000]])
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "emb/dtype.h"
#include "emb/error.h"

namespace emb {

using Shape = std::vector<std::int64_t>;

/// Number of elements of a shape; throws ValueError for a negative size or an overflow of
/// int64 element counts. `what` names the caller in the message.
std::int64_t checked_numel(const Shape& shape, const char* what = "Tensor");

/// "[2, 3]" — how shapes appear in messages.
std::string shape_to_string(const Shape& shape);

class Tensor {
 public:
  /// An undefined tensor: defined() is false, every other accessor throws ValueError.
  Tensor() = default;

  /// Uninitialized owning storage of the given shape. Throws ValueError for negative sizes, an
  /// element count past int64 and a dtype outside the enum. A shape with a 0 has no elements
  /// and is valid whatever its other sizes. (shape by value: a temporary one is moved in.)
  static Tensor empty(Shape shape, DType dtype);
  static Tensor zeros(const Shape& shape, DType dtype);
  /// Every element = value converted to dtype. Converting NaN, an infinity or an out-of-range
  /// value to an integer dtype throws ValueError (here and in to, copy_, fill_, set_double).
  static Tensor full(const Shape& shape, double value, DType dtype);
  /// Owning copy of values with the given shape (values.size() must equal the shape's numel).
  template <typename T>
  static Tensor from_vector(std::span<const T> values, const Shape& shape);
  template <typename T>
  static Tensor from_vector(std::initializer_list<T> values, const Shape& shape) {
    return from_vector<T>(std::span<const T>(values.begin(), values.size()), shape);
  }
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
    return from_vector<T>(std::span<const T>(values), shape);
  }
  /// 0-d tensor holding one value.
  template <typename T>
  static Tensor scalar(T value) {
    return from_vector<T>(std::span<const T>(&value, 1), Shape{});
  }
  /// Views the caller's memory without a copy; the caller keeps it alive and contiguous.
  /// Throws ValueError for a null pointer with elements, and for a pointer not aligned to the
  /// element size (copy such data with from_vector() instead).
  static Tensor view(void* data, const Shape& shape, DType dtype);
  /// Views memory that `owner` keeps alive (a file mapping, a buffer): the tensor and every
  /// handle copied from it hold a reference to owner, so the memory outlives the last of them.
  static Tensor view(void* data, const Shape& shape, DType dtype,
                     std::shared_ptr<const void> owner);

  /// The same tensor marked read-only: emb's writing operations (fill_, copy_, set_double,
  /// renorm, optimizer steps, ...) throw ValueError naming `origin` (e.g. the mapped file).
  /// clone() gives a writable copy.
  Tensor read_only(const std::string& origin) const;
  bool is_read_only() const { return read_only_origin_ != nullptr; }
  /// Throws ValueError "<what>: the tensor is read-only (<origin>)..." for a read-only tensor.
  void check_writable(const char* what) const;

  bool defined() const { return storage_ != nullptr || view_; }
  DType dtype() const {
    check_defined("Tensor::dtype");
    return dtype_;
  }
  const Shape& shape() const { return shape_; }
  std::int64_t dim() const { return static_cast<std::int64_t>(shape_.size()); }
  /// Size of dimension d; negative d counts from the end (size(-1) is the last).
  std::int64_t size(std::int64_t d) const {
    const std::int64_t n = dim();
    const std::int64_t wrapped = d < 0 ? d + n : d;
    if (wrapped < 0 || wrapped >= n) throw_bad_size_dim(d, n);
    return shape_[static_cast<std::size_t>(wrapped)];
  }
  std::int64_t numel() const { return numel_; }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel_) * element_size(dtype_); }
  /// True when the tensor owns (or shares ownership of) its memory; false for view() without
  /// an owner.
  bool owns_memory() const { return storage_ != nullptr || owner_ != nullptr; }
  /// True when both handles point into the same allocation or caller buffer.
  bool shares_storage_with(const Tensor& other) const;

  void* raw_data() const {
    check_defined("Tensor::raw_data");
    return data_;
  }
  /// Typed pointer to the first element; throws ValueError if T is not the tensor's dtype.
  template <typename T>
  T* data() const;

  /// Bounds-checked element access by n-d position: t.at<float>(1, 2).
  template <typename T, typename... I>
  T& at(I... position) const {
    const std::int64_t pos[] = {static_cast<std::int64_t>(position)...};
    return data<T>()[flat_offset(pos, sizeof...(I))];
  }
  /// Element at flat position i converted to double (any dtype).
  double get_double(std::int64_t i) const;
  /// Sets the element at flat position i from a double (rounded to the dtype).
  void set_double(std::int64_t i, double value) const;

  /// Deep copy into new owning storage.
  Tensor clone() const;
  /// Converting copy: t.to(DType::kFloat64).
  Tensor to(DType dtype) const;
  /// Same storage, another shape with the same numel.
  Tensor reshape(const Shape& shape) const;
  /// Row i of the first dimension, sharing storage: weight.select(0) is weight[0].
  Tensor select(std::int64_t i) const;
  /// Sets every element to value (in place).
  const Tensor& fill_(double value) const;
  /// Copies src's elements into this tensor (same shape; dtypes converted).
  const Tensor& copy_(const Tensor& src) const;
  /// True when shape, dtype and every byte are equal (bitwise, so NaN == NaN and -0 != +0).
  bool equal(const Tensor& other) const;

  /// PyTorch's printing: tensor([[1.0000, 2.0000]]), with dtype= for non-default dtypes.
  std::string to_string() const;

 private:
  std::int64_t flat_offset(const std::int64_t* pos, std::size_t n) const;
  void check_defined(const char* what) const {
    if (!defined()) throw_undefined(what);
  }
  [[noreturn]] static void throw_undefined(const char* what);
  [[noreturn]] static void throw_bad_size_dim(std::int64_t d, std::int64_t n);

  std::shared_ptr<std::byte> storage_;  // owning allocation, null for views
  std::shared_ptr<const void> owner_;   // what keeps a view's memory alive (null: the caller)
  std::shared_ptr<const std::string> read_only_origin_;  // null: writable
  std::byte* data_ = nullptr;  // first element (inside storage_ or the caller's buffer)
  bool view_ = false;
  Shape shape_;
  std::int64_t numel_ = 0;
  DType dtype_ = DType::kFloat32;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

template <typename T>
T* Tensor::data() const {
  check_defined("Tensor::data");
  if (dtype_of<T> != dtype_) {
    throw ValueError(std::string("Tensor::data: tensor has dtype ") +
                     std::string(dtype_name(dtype_)) + ", requested " +
                     std::string(dtype_name(dtype_of<T>)));
  }
  return reinterpret_cast<T*>(data_);
}

template <typename T>
Tensor Tensor::from_vector(std::span<const T> values, const Shape& shape) {
  const std::int64_t numel = checked_numel(shape, "Tensor::from_vector");
  if (static_cast<std::int64_t>(values.size()) != numel) {  // checked before allocating
    throw ValueError("Tensor::from_vector: " + std::to_string(values.size()) +
                     " values do not fill shape " + shape_to_string(shape) + " (" +
                     std::to_string(numel) + " elements)");
  }
  Tensor t = empty(shape, dtype_of<T>);
  T* out = t.data<T>();
  for (std::size_t i = 0; i < values.size(); ++i) out[i] = values[i];
  return t;
}

}  // namespace emb
