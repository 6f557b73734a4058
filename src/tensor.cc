#include "emb/tensor.h"

#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <ostream>
#include <utility>

#include "index_check.h"
#include "kernels/fast.h"
#include "kernels/parallel.h"
#include "module_common.h"

#if defined(__SANITIZE_ADDRESS__)  // g++
#define EMB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)  // clang
#define EMB_ASAN 1
#endif
#endif
#ifdef EMB_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace emb {

namespace {

constexpr std::size_t kAlignment = 64;  // one cache line; SIMD kernels rely on nothing more

// From this size on, empty() maps its memory itself, 2 MiB-aligned and marked for transparent
// huge pages: a big output (a lookup of a million rows), written whole, is then faulted in 2 MiB
// at a time instead of 4 KiB (on virtual machines a 4 KiB fault can cost microseconds, more than
// the lookup of the row it holds). zeros() does not ask for huge pages: a gradient that a batch
// touches in a few rows would pay 2 MiB of zeroing per row.
constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;
constexpr std::size_t kHugeAllocBytes = 2 * kHugePageBytes;

std::size_t round_up_to_huge_page(std::size_t nbytes) {
  return (nbytes + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
}

// A mapping of fresh anonymous memory (zero on first touch) that holds nbytes from a 2 MiB
// boundary on, advised huge pages.
struct HugeMapping {
  void* base = nullptr;  // the mapping, as mmap returned it
  std::size_t mapped = 0;
  std::byte* data = nullptr;  // 2 MiB-aligned, nbytes long
  std::size_t nbytes = 0;
};

// data null when mapping fails.
HugeMapping map_huge(std::size_t nbytes) {
  HugeMapping m;
  m.mapped = nbytes + kHugePageBytes;
  m.base = ::mmap(nullptr, m.mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m.base == MAP_FAILED) return HugeMapping();
  m.data =
      reinterpret_cast<std::byte*>(round_up_to_huge_page(reinterpret_cast<std::uintptr_t>(m.base)));
  m.nbytes = nbytes;
#ifdef MADV_HUGEPAGE
  ::madvise(m.data, nbytes, MADV_HUGEPAGE);  // advice only: without THP the pages stay 4 KiB
#endif
  return m;
}

void unmap(const HugeMapping& m) {
  if (m.base != nullptr) ::munmap(m.base, m.mapped);
}

// nbytes of fresh anonymous memory (zero on first touch), 2 MiB-aligned, advised huge pages.
std::shared_ptr<std::byte> allocate_huge(std::size_t nbytes) {
  const HugeMapping m = map_huge(nbytes);
  if (m.data == nullptr) return nullptr;
  return std::shared_ptr<std::byte>(m.data, [m](std::byte*) { unmap(m); });
}

std::shared_ptr<std::byte> allocate(std::size_t nbytes) {
  if (nbytes >= kHugeAllocBytes) {
    if (std::shared_ptr<std::byte> storage = allocate_huge(nbytes)) return storage;
  }
  // One allocation for the elements and the reference count (a small output costs one malloc),
  // with room to align the first element; at least one byte, so that an empty tensor still owns
  // (and compares) a storage.
  std::shared_ptr<std::byte[]> block =
      std::make_shared_for_overwrite<std::byte[]>(nbytes + kAlignment);
  const auto base = reinterpret_cast<std::uintptr_t>(block.get());
  auto* data = reinterpret_cast<std::byte*>((base + kAlignment - 1) & ~(kAlignment - 1));
#ifdef EMB_ASAN
  // The room around the elements stays out of bounds: a kernel's overrun is still reported.
  ASAN_POISON_MEMORY_REGION(block.get(), static_cast<std::size_t>(data - block.get()));
  ASAN_POISON_MEMORY_REGION(
      data + nbytes, static_cast<std::size_t>(block.get() + nbytes + kAlignment - data - nbytes));
#endif
  // Owns the block, points at the elements; moved, not copied (no reference count to update).
  return std::shared_ptr<std::byte>(std::move(block), data);
}

// From this size on, zeros() maps fresh pages from the OS instead of writing zeros: the kernel
// zeroes a page when it is first touched, so a big gradient costs only the rows a backward
// writes (a 1 GiB dense gradient of a batch touching 1,000 rows costs 1,000 rows' pages).
constexpr std::size_t kLazyZeroBytes = std::size_t{1} << 20;

// nbytes of zeros, page-aligned, zeroed lazily by the OS; null when the mapping fails.
std::shared_ptr<std::byte> allocate_lazy_zeros(std::size_t nbytes) {
  void* p = ::mmap(nullptr, nbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  return std::shared_ptr<std::byte>(static_cast<std::byte*>(p),
                                    [nbytes](std::byte* q) { ::munmap(q, nbytes); });
}

// zeros_for_scatter() asks for huge pages from this many writes per 2 MiB of gradient on. Measured
// on a virtual machine: a 4 KiB fault costs about 4-5 us, a 2 MiB one (zeroing included) about
// 200 us; at 48 random row writes per 2 MiB region about 45 of its 512 small pages are touched,
// where the two costs meet.
constexpr std::int64_t kWritesPerHugePage = 48;

template <typename T>
double load_as_double(const void* p) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
    return static_cast<double>(static_cast<float>(*static_cast<const T*>(p)));
  } else {
    return static_cast<double>(*static_cast<const T*>(p));
  }
}

template <typename T>
void store_from_double(void* p, double v) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
    *static_cast<T*>(p) = T(static_cast<float>(v));
  } else {
    *static_cast<T*>(p) = static_cast<T>(v);
  }
}

// Converting NaN, an infinity or an out-of-range double to an integer is undefined in C++:
// such values are refused before anything is written.
bool fits(double v, DType dtype) {
  switch (dtype) {
    case DType::kInt64:
      return v >= -9223372036854775808.0 && v < 9223372036854775808.0;
    case DType::kInt32:
      return v >= -2147483648.0 && v < 2147483648.0;
    case DType::kInt8:
      return v >= -128.0 && v < 128.0;
    case DType::kUInt8:
      return v >= 0.0 && v < 256.0;
    default:
      return true;
  }
}

// "Tensor::fill_: value nan does not fit int32 (valid: -2147483648 to 2147483647)";
// `where` names the element ("element [1][2] = " or "").
[[noreturn]] void throw_does_not_fit(const char* op, const std::string& where, double v,
                                     DType dtype) {
  const char* range = dtype == DType::kInt32   ? "-2147483648 to 2147483647"
                      : dtype == DType::kInt8  ? "-128 to 127"
                      : dtype == DType::kUInt8 ? "0 to 255"
                                               : "-9223372036854775808 to 9223372036854775807";
  throw ValueError(std::string(op) + ": " + (where.empty() ? "value " : where) +
                   detail::py_float_repr(v) + " does not fit " + std::string(dtype_name(dtype)) +
                   " (valid: " + range + ")");
}

// Throws ValueError unless every element of src can be converted to dtype.
void check_convertible(const Tensor& src, DType dtype, const char* op) {
  // Floating to integer, or an integer to a narrower (or unsigned) one.
  const bool may_not_fit =
      is_integral(dtype) && dtype != src.dtype() &&
      (is_floating(src.dtype()) || element_size(src.dtype()) >= element_size(dtype) ||
       dtype == DType::kUInt8);
  if (!may_not_fit) return;
  for (std::int64_t i = 0; i < src.numel(); ++i) {
    const double v = src.get_double(i);
    if (!fits(v, dtype)) {
      throw_does_not_fit(op, "element " + detail::position_string(src.shape(), i) + " = ", v,
                         dtype);
    }
  }
}

void check_valid_dtype(DType dtype, const char* op) {
  if (!is_valid_dtype(dtype)) {
    throw ValueError(std::string(op) + ": dtype code " + std::to_string(static_cast<int>(dtype)) +
                     " is not a DType (valid: 0 to 7)");
  }
}

}  // namespace

std::string shape_to_string(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::int64_t checked_numel(const Shape& shape, const char* what) {
  bool empty = false;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] < 0) {
      throw ValueError(std::string(what) + ": negative dimension " + std::to_string(shape[d]) +
                       " at position " + std::to_string(d) + " of shape " + shape_to_string(shape));
    }
    empty = empty || shape[d] == 0;
  }
  if (empty) return 0;  // no elements, whatever the other sizes: [0, 2^62] is a valid shape
  std::int64_t n = 1;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    // Bounded so that the byte count of any dtype (8 bytes at most) fits an int64 too. (A
    // multiply checked for overflow, not a division: this runs on every tensor made.)
    if (__builtin_mul_overflow(n, shape[d], &n) ||
        n > std::numeric_limits<std::int64_t>::max() / 8) {
      throw ValueError(std::string(what) + ": shape " + shape_to_string(shape) +
                       " has too many elements to address");
    }
  }
  return n;
}

Tensor Tensor::empty(Shape shape, DType dtype) {
  check_valid_dtype(dtype, "Tensor::empty");
  Tensor t;
  t.numel_ = checked_numel(shape, "Tensor::empty");
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.storage_ = allocate(t.nbytes());
  t.data_ = t.storage_.get();
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  check_valid_dtype(dtype, "Tensor::zeros");
  const std::int64_t numel = checked_numel(shape);
  const std::size_t nbytes = static_cast<std::size_t>(numel) * element_size(dtype);
  if (nbytes >= kLazyZeroBytes) {
    if (std::shared_ptr<std::byte> storage = allocate_lazy_zeros(nbytes)) {
      Tensor t;
      t.numel_ = numel;
      t.shape_ = shape;
      t.dtype_ = dtype;
      t.storage_ = std::move(storage);
      t.data_ = t.storage_.get();
      return t;
    }
  }
  Tensor t = empty(shape, dtype);
  std::memset(t.data_, 0, t.nbytes());  // all-zero bits are +0 in every dtype
  return t;
}

namespace {

// Big blocks kept for reuse: the memory of the last few big tensors that zeros_for_scatter() and
// empty_reused() gave out (a dense gradient, a coalesced gradient's values, a lookup's or a bag's
// output), kept when they are freed for the next request of about the same size (a training or
// serving loop asks for the same ones every step). Fresh memory is zeroed by the OS on first
// touch, but on a virtual machine whose host takes freed memory back (free page reporting) that
// first touch can cost seconds per GiB; reusing memory the process holds costs what writing it
// costs. At most kCachedBlocks blocks, the least recently freed evicted first;
// release_cached_memory() returns them all.
using CachedBlock = HugeMapping;

constexpr int kCachedBlocks = 8;

struct BlockCache {
  std::array<CachedBlock, kCachedBlocks> blocks;
  std::array<std::uint64_t, kCachedBlocks> freed_at{};  // when each block came back
  std::uint64_t clock = 0;
};

std::mutex cache_mutex;
BlockCache block_cache;

// Removes and returns the cached block of at least nbytes with the least to spare, if that is at
// most max_spare; an empty block when there is none.
CachedBlock take_cached(std::size_t nbytes, std::size_t max_spare) {
  const std::lock_guard<std::mutex> lock(cache_mutex);
  int best = -1;
  for (int i = 0; i < kCachedBlocks; ++i) {
    const CachedBlock& c = block_cache.blocks[static_cast<std::size_t>(i)];
    if (c.data == nullptr || c.nbytes < nbytes || c.nbytes - nbytes > max_spare) continue;
    if (best < 0 || c.nbytes < block_cache.blocks[static_cast<std::size_t>(best)].nbytes) best = i;
  }
  if (best < 0) return CachedBlock();
  return std::exchange(block_cache.blocks[static_cast<std::size_t>(best)], CachedBlock());
}

// A tensor's storage over block b: when the last handle goes, b joins the cache (in a free slot,
// else in place of the least recently freed block, which is unmapped).
std::shared_ptr<std::byte> recycled_storage(const CachedBlock& b) {
  return std::shared_ptr<std::byte>(b.data, [b](std::byte*) {
    CachedBlock old;
    {
      const std::lock_guard<std::mutex> lock(cache_mutex);
      std::size_t slot = 0;
      for (std::size_t i = 0; i < block_cache.blocks.size(); ++i) {
        if (block_cache.blocks[i].data == nullptr) {
          slot = i;
          break;
        }
        if (block_cache.freed_at[i] < block_cache.freed_at[slot]) slot = i;
      }
      old = block_cache.blocks[slot];
      block_cache.blocks[slot] = b;
      block_cache.freed_at[slot] = ++block_cache.clock;
    }
    unmap(old);
  });
}

// fn(from, to) over [0, nbytes) in 2 MiB pieces shared out over the library's threads.
template <typename Fn>
void in_parallel_pieces(std::size_t nbytes, Fn&& fn) {
  const auto pieces = static_cast<std::int64_t>(round_up_to_huge_page(nbytes) / kHugePageBytes);
  detail::parallel_ranges(
      pieces, static_cast<std::int64_t>(nbytes / 4),
      [&](std::int64_t begin, std::int64_t end, int, int) {
        const std::size_t from = static_cast<std::size_t>(begin) * kHugePageBytes;
        fn(from, std::min(nbytes, static_cast<std::size_t>(end) * kHugePageBytes));
      });
}

// memset(p, 0, nbytes) over the library's threads (one core clears a gigabyte in tens of
// milliseconds, about what the scatter that follows costs). Plain stores: streaming ones clear
// faster on their own, but the scatter that reads the lines next then runs slower by as much
// (measured interleaved, 1 GiB dense gradients at D = 64 and 128, 1 and 2 threads).
void zero_in_parallel(std::byte* p, std::size_t nbytes) {
  in_parallel_pieces(
      nbytes, [&](std::size_t from, std::size_t to) { std::memset(p + from, 0, to - from); });
}

// memcpy(dst, src, nbytes) for buffers that do not overlap, from 8 MiB on over the library's
// threads (a big table's clone or copy is bound by memory bandwidth, of which one core gets only
// a part), and from fast::kStreamBytes on with streaming stores (half the time of memcpy's plain
// ones on the machines measured).
void copy_in_parallel(std::byte* dst, const std::byte* src, std::size_t nbytes) {
  constexpr std::size_t kParallelFrom = std::size_t{8} << 20;
  if (nbytes < kParallelFrom) {
    std::memcpy(dst, src, nbytes);
    return;
  }
  const bool stream = nbytes >= detail::fast::kStreamBytes;
  in_parallel_pieces(nbytes, [&](std::size_t from, std::size_t to) {
    if (stream) {
      detail::fast::stream_copy(dst + from, src + from, to - from);
    } else {
      std::memcpy(dst + from, src + from, to - from);
    }
  });
}

// nbytes of zeros for a dense scatter: the cached block (zeroed here) when it has this size, else
// a fresh huge-page mapping; null when mapping fails.
std::shared_ptr<std::byte> scatter_zeros(std::size_t nbytes) {
  CachedBlock b = take_cached(nbytes, 0);
  if (b.data != nullptr) {
    zero_in_parallel(b.data, nbytes);
    return recycled_storage(b);
  }
  b = map_huge(nbytes);
  return b.data == nullptr ? nullptr : recycled_storage(b);
}

}  // namespace

void release_cached_memory() {
  BlockCache old;
  {
    const std::lock_guard<std::mutex> lock(cache_mutex);
    std::swap(old, block_cache);
  }
  for (const CachedBlock& b : old.blocks) unmap(b);
}

Tensor detail::empty_reused(Shape shape, DType dtype) {
  check_valid_dtype(dtype, "Tensor::empty");
  const std::int64_t numel = checked_numel(shape);
  const std::size_t nbytes = static_cast<std::size_t>(numel) * element_size(dtype);
  // From 1 MiB on (glibc's malloc hands such sizes back to the OS when they are freed, so each
  // call would pay for fresh pages again).
  if (nbytes >= kLazyZeroBytes) {
    // A cached block that holds nbytes with at most an eighth and a huge page to spare (a block
    // this call maps has up to a sixteenth and a huge page more: it must fit the next call of
    // the same size).
    CachedBlock b = take_cached(nbytes, nbytes / 8 + kHugePageBytes);
    if (b.data == nullptr) {  // room for a slightly larger output next time (whole huge pages)
      b = map_huge(round_up_to_huge_page(nbytes + nbytes / 16));
    }
    if (b.data != nullptr) {
      std::byte* data = b.data;
      return Tensor::view(data, shape, dtype, recycled_storage(b));
    }
  }
  return Tensor::empty(std::move(shape), dtype);
}

Tensor detail::zeros_for_scatter(const Shape& shape, DType dtype, std::int64_t writes) {
  check_valid_dtype(dtype, "Tensor::zeros");
  const std::int64_t numel = checked_numel(shape);
  const std::size_t nbytes = static_cast<std::size_t>(numel) * element_size(dtype);
  const auto huge_pages = static_cast<std::int64_t>(nbytes / kHugePageBytes);
  if (nbytes >= kHugeAllocBytes && writes / kWritesPerHugePage >= huge_pages) {
    if (std::shared_ptr<std::byte> storage = scatter_zeros(nbytes)) {
      std::byte* data = storage.get();
      return Tensor::view(data, shape, dtype, std::move(storage));
    }
  }
  return Tensor::zeros(shape, dtype);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
  check_valid_dtype(dtype, "Tensor::full");
  if (!fits(value, dtype)) throw_does_not_fit("Tensor::full", "", value, dtype);
  Tensor t = empty(shape, dtype);
  t.fill_(value);
  return t;
}

Tensor Tensor::view(void* data, const Shape& shape, DType dtype) {
  check_valid_dtype(dtype, "Tensor::view");
  Tensor t;
  t.numel_ = checked_numel(shape, "Tensor::view");
  if (data == nullptr && t.numel_ != 0) {
    throw ValueError("Tensor::view: null data for shape " + shape_to_string(shape));
  }
  // Kernels load whole elements: a misaligned pointer would make every load undefined.
  const std::size_t align = element_size(dtype);
  const std::size_t misalignment = reinterpret_cast<std::uintptr_t>(data) % align;
  if (misalignment != 0) {  // the message names the offset, not the address (reproducible)
    throw ValueError("Tensor::view: data pointer is not aligned to " + std::to_string(align) +
                     " bytes, as dtype " + std::string(dtype_name(dtype)) + " needs (it is " +
                     std::to_string(misalignment) +
                     " bytes past a boundary; copy the data instead)");
  }
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.data_ = static_cast<std::byte*>(data);
  t.view_ = true;
  return t;
}

Tensor Tensor::view(void* data, const Shape& shape, DType dtype,
                    std::shared_ptr<const void> owner) {
  Tensor t = view(data, shape, dtype);
  t.owner_ = std::move(owner);
  return t;
}

Tensor Tensor::read_only(const std::string& origin) const {
  check_defined("Tensor::read_only");
  Tensor t = *this;
  t.read_only_origin_ = std::make_shared<const std::string>(origin);
  return t;
}

void Tensor::check_writable(const char* what) const {
  if (read_only_origin_) {
    throw ValueError(std::string(what) + ": the tensor is read-only (" + *read_only_origin_ +
                     "); load it into memory to modify it");
  }
}

void Tensor::throw_undefined(const char* what) {
  throw ValueError(std::string(what) + ": tensor is undefined");
}

// Out of line (and cold), so that the inline Tensor::size() stays a few instructions.
[[gnu::noinline, gnu::cold]] void Tensor::throw_bad_size_dim(std::int64_t d, std::int64_t n) {
  throw IndexError("Tensor::size: dimension " + std::to_string(d) + " is out of range for a " +
                   std::to_string(n) + "-d tensor");
}

bool Tensor::shares_storage_with(const Tensor& other) const {
  if (!defined() || !other.defined()) return false;
  if (storage_ && storage_ == other.storage_) return true;
  const auto* a = data_;
  const auto* b = other.data_;
  return a != nullptr && a < b + other.nbytes() && b < a + nbytes();
}

std::int64_t Tensor::flat_offset(const std::int64_t* pos, std::size_t n) const {
  check_defined("Tensor::at");
  if (n != shape_.size()) {
    throw IndexError("Tensor::at: " + std::to_string(n) + " indices for a " +
                     std::to_string(shape_.size()) + "-d tensor of shape " +
                     shape_to_string(shape_));
  }
  std::int64_t off = 0;
  for (std::size_t d = 0; d < n; ++d) {
    if (pos[d] < 0 || pos[d] >= shape_[d]) {
      throw IndexError("Tensor::at: index " + std::to_string(pos[d]) + " at dimension " +
                       std::to_string(d) + " is out of range for shape " + shape_to_string(shape_));
    }
    off = off * shape_[d] + pos[d];
  }
  return off;
}

double Tensor::get_double(std::int64_t i) const {
  check_defined("Tensor::get_double");
  if (i < 0 || i >= numel_) {
    throw IndexError("Tensor::get_double: flat index " + std::to_string(i) +
                     " is out of range for " + std::to_string(numel_) + " elements");
  }
  const void* p = data_ + static_cast<std::size_t>(i) * element_size(dtype_);
  return visit_dtype(dtype_, [&](auto tag) { return load_as_double<decltype(tag)>(p); });
}

void Tensor::set_double(std::int64_t i, double value) const {
  check_defined("Tensor::set_double");
  check_writable("Tensor::set_double");
  if (i < 0 || i >= numel_) {
    throw IndexError("Tensor::set_double: flat index " + std::to_string(i) +
                     " is out of range for " + std::to_string(numel_) + " elements");
  }
  if (!fits(value, dtype_)) {
    throw_does_not_fit("Tensor::set_double", "value for flat index " + std::to_string(i) + ": ",
                       value, dtype_);
  }
  void* p = data_ + static_cast<std::size_t>(i) * element_size(dtype_);
  visit_dtype(dtype_, [&](auto tag) { store_from_double<decltype(tag)>(p, value); });
}

Tensor Tensor::clone() const {
  check_defined("Tensor::clone");
  Tensor t = empty(shape_, dtype_);  // owning and writable, whatever this tensor is
  if (nbytes() != 0) copy_in_parallel(t.data_, data_, nbytes());
  return t;
}

Tensor Tensor::to(DType dtype) const {
  check_defined("Tensor::to");
  check_valid_dtype(dtype, "Tensor::to");
  if (dtype == dtype_) return clone();
  check_convertible(*this, dtype, "Tensor::to");
  Tensor t = empty(shape_, dtype);
  t.copy_(*this);
  return t;
}

Tensor Tensor::reshape(const Shape& shape) const {
  check_defined("Tensor::reshape");
  const std::int64_t n = checked_numel(shape, "Tensor::reshape");
  if (n != numel_) {
    throw ValueError("Tensor::reshape: shape " + shape_to_string(shape) + " is invalid for " +
                     std::to_string(numel_) + " elements of shape " + shape_to_string(shape_));
  }
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::select(std::int64_t i) const {
  check_defined("Tensor::select");
  if (shape_.empty()) throw IndexError("Tensor::select: cannot select from a 0-d tensor");
  if (i < 0 || i >= shape_[0]) {
    throw IndexError("Tensor::select: index " + std::to_string(i) +
                     " is out of range for dimension 0 of shape " + shape_to_string(shape_));
  }
  Tensor t = *this;
  t.shape_.erase(t.shape_.begin());
  t.numel_ = checked_numel(t.shape_);
  t.data_ = data_ + static_cast<std::size_t>(i * t.numel_) * element_size(dtype_);
  return t;
}

const Tensor& Tensor::fill_(double value) const {
  check_defined("Tensor::fill_");
  check_writable("Tensor::fill_");
  if (!fits(value, dtype_)) throw_does_not_fit("Tensor::fill_", "", value, dtype_);
  visit_dtype(dtype_, [&](auto tag) {
    using T = decltype(tag);
    T v;
    store_from_double<T>(&v, value);
    T* p = reinterpret_cast<T*>(data_);
    for (std::int64_t i = 0; i < numel_; ++i) p[i] = v;
  });
  return *this;
}

const Tensor& Tensor::copy_(const Tensor& src) const {
  check_defined("Tensor::copy_");
  src.check_defined("Tensor::copy_");
  check_writable("Tensor::copy_");
  if (src.shape_ != shape_) {
    throw ValueError("Tensor::copy_: source shape " + shape_to_string(src.shape_) +
                     " does not match destination shape " + shape_to_string(shape_));
  }
  if (src.dtype_ == dtype_) {
    const std::size_t n = nbytes();
    const auto d = reinterpret_cast<std::uintptr_t>(data_);
    const auto s = reinterpret_cast<std::uintptr_t>(src.data_);
    const bool overlap = d < s + n && s < d + n;
    if (n != 0 && overlap) std::memmove(data_, src.data_, n);
    if (n != 0 && !overlap) copy_in_parallel(data_, src.data_, n);
    return *this;
  }
  // Every source value is exact as a double; 16-bit targets round double -> float -> 16 bit,
  // as c10::Half and c10::BFloat16 do. Every value is checked first (NaN into int32 throws and
  // leaves this tensor as it was), then converted into a scratch tensor, so that a source that
  // overlaps this tensor is read before it is overwritten.
  check_convertible(src, dtype_, "Tensor::copy_");
  Tensor converted = empty(shape_, dtype_);
  for (std::int64_t i = 0; i < numel_; ++i) converted.set_double(i, src.get_double(i));
  if (nbytes() != 0) std::memcpy(data_, converted.data_, nbytes());
  return *this;
}

bool Tensor::equal(const Tensor& other) const {
  if (!defined() || !other.defined()) return defined() == other.defined();
  return dtype_ == other.dtype_ && shape_ == other.shape_ &&
         (nbytes() == 0 || std::memcmp(data_, other.data_, nbytes()) == 0);
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  return os << t.to_string();
}

}  // namespace emb
