// File access shared by the readers and writers: a file's bytes mapped read-only, and a writer
// that replaces a file atomically.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace emb::detail::io {

/// The number of bytes at the start of a file that its reader parses before the data (magic,
/// lengths, header), computed from the file's first bytes (at most kHeadProbe of them) and its
/// size. A length the first bytes show to be bad may be answered with anything: the parser
/// reports it (from the same bytes).
using HeadLength = std::uint64_t (*)(std::span<const std::byte> first, std::uint64_t size);

/// How many bytes a HeadLength is shown (fewer when the file is shorter).
inline constexpr std::size_t kHeadProbe = 4096;

/// The bytes of a whole file: mapped read-only (mmap) when the file can be mapped, read into
/// memory otherwise (pipes, special files). Shared: a tensor viewing the bytes holds a
/// shared_ptr to them.
class FileBytes {
 public:
  /// Throws IoError "<op>: cannot open <path>: <reason>".
  static std::shared_ptr<const FileBytes> open(const std::string& path, const char* op);
  /// open() for a format with a header: when the file is mapped, its first head_length(...)
  /// bytes are also read into *head with pread(), so that parsing the header touches no page
  /// of the mapping. (A fault on a cold mapping reads the kernel's whole read-around window,
  /// the device's read_ahead_kb: megabytes on some virtual disks; a read reads what it asks
  /// for and a few pages more.) *head is left empty when the file is not mapped.
  static std::shared_ptr<const FileBytes> open(const std::string& path, const char* op,
                                               HeadLength head_length,
                                               std::vector<std::byte>* head);
  /// Bytes already in memory (tests, fuzzing): not copied, the caller keeps them alive.
  static std::shared_ptr<const FileBytes> borrow(std::span<const std::byte> bytes,
                                                 std::string name);

  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;
  ~FileBytes();

  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }
  /// True when the bytes are a mapping of the file (views of them are views of the file).
  bool mapped() const { return mapped_; }

 private:
  FileBytes() = default;

  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  bool mapped_ = false;
  std::unique_ptr<std::byte[]> buffer_;  // when read instead of mapped
  std::string path_;
};

/// Advises the kernel that the mapped pages holding bytes [p, p + n) will be read in random
/// order (madvise MADV_RANDOM on the pages they touch): a fault reads no read-around window.
/// Advice only: a failure is ignored.
void advise_random(const void* p, std::size_t n);

/// The first bytes of a file (at most max_bytes) and its size, for detecting its format: a
/// regular file is not mapped, its first bytes are read with pread(); anything else (a pipe, a
/// special file) is read whole, as FileBytes::open does. Throws IoError as FileBytes::open.
struct FileStart {
  std::vector<std::byte> bytes;
  std::uint64_t size = 0;
};
FileStart read_file_start(const std::string& path, const char* op, std::size_t max_bytes);

/// The first n bytes of f: head's copy when it holds them, else f's own bytes (n <= f.size()).
inline const std::byte* file_prefix(const FileBytes& f, std::span<const std::byte> head,
                                    std::size_t n) {
  return head.size() >= n ? head.data() : f.data();
}

/// Writes a file so that a crash at any moment leaves either the old file or the complete new
/// one: the bytes go to a temporary file in the same directory, which commit() fsyncs, renames
/// over path, then fsyncs the directory. Destroyed without commit(), it removes the temporary
/// file. Every failure throws IoError naming op and the path.
class AtomicWriter {
 public:
  AtomicWriter(const std::string& path, const char* op);
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;
  ~AtomicWriter();

  void write(const void* data, std::size_t n);
  void write(std::span<const std::byte> bytes) { write(bytes.data(), bytes.size()); }
  void write(const std::string& s) { write(s.data(), s.size()); }
  void commit();

 private:
  void flush_buffer();
  [[noreturn]] void fail(const std::string& what) const;

  std::string path_;
  std::string tmp_path_;
  std::string op_;
  int fd_ = -1;
  std::string buffer_;
};

/// CRC-32C (Castagnoli) of bytes, continuing from crc (0 to start).
std::uint32_t crc32c(std::span<const std::byte> bytes, std::uint32_t crc = 0);

/// True when bytes are valid UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
bool is_valid_utf8(std::string_view bytes);

}  // namespace emb::detail::io
