// Outputs of the fast-kernel tests: a buffer between guard cells (an overrun by a fast kernel
// shows), compared with the ref twin's byte for byte.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace emb::test {

/// An output buffer of n elements of T, filled with the byte `fill`, between guard cells.
template <typename T>
class Guarded {
 public:
  static constexpr std::size_t kGuard = 64;  // bytes of guard cells on each side
  static constexpr unsigned char kGuardByte = 0xA5;
  static constexpr std::size_t kAlign = 64;

  explicit Guarded(std::int64_t n, unsigned char fill = 0)
      : bytes_(static_cast<std::size_t>(n) * sizeof(T)),
        start_(kGuard),
        buf_(bytes_ + 2 * kGuard, kGuardByte) {
    std::memset(buf_.data() + start_, fill, bytes_);
  }

  /// The buffer placed `misalign` bytes past a 64-byte boundary (the kernels that take another
  /// path for an aligned output get both).
  static Guarded at_alignment(std::int64_t n, std::size_t misalign) {
    return Guarded(n, misalign % kAlign);
  }

  T* data() { return reinterpret_cast<T*>(buf_.data() + start_); }
  const unsigned char* bytes() const { return buf_.data() + start_; }
  std::size_t size_bytes() const { return bytes_; }
  bool guards_intact() const {
    for (std::size_t i = 0; i < kGuard; ++i) {
      if (buf_[start_ - kGuard + i] != kGuardByte || buf_[start_ + bytes_ + i] != kGuardByte) {
        return false;
      }
    }
    return true;
  }
  void copy_from(const std::vector<T>& v) { std::memcpy(data(), v.data(), bytes_); }

 private:
  Guarded(std::int64_t n, std::size_t misalign)
      : bytes_(static_cast<std::size_t>(n) * sizeof(T)),
        buf_(bytes_ + 2 * kGuard + kAlign, kGuardByte) {
    const auto base = reinterpret_cast<std::uintptr_t>(buf_.data()) + kGuard;
    start_ = kGuard + (kAlign + misalign - base % kAlign) % kAlign;
    std::memset(buf_.data() + start_, 0, bytes_);
  }

  std::size_t bytes_;
  std::size_t start_;  // where the data begins in buf_, kGuard bytes or more in
  std::vector<unsigned char> buf_;
};

/// Bitwise comparison of a fast kernel's output with its twin's (guards checked); on a
/// mismatch, says where.
template <typename T>
::testing::AssertionResult same_bits(const Guarded<T>& fast_out, const Guarded<T>& ref_out) {
  if (!fast_out.guards_intact()) return ::testing::AssertionFailure() << "guard cells overwritten";
  if (fast_out.size_bytes() != ref_out.size_bytes()) {
    return ::testing::AssertionFailure() << "sizes differ";
  }
  for (std::size_t i = 0; i < fast_out.size_bytes(); ++i) {
    if (fast_out.bytes()[i] != ref_out.bytes()[i]) {
      return ::testing::AssertionFailure()
             << "byte " << i << " (element " << i / sizeof(T) << ") differs";
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace emb::test
