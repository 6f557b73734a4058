// File access shared by the readers and writers: a file's bytes mapped read-only, and a writer
// that replaces a file atomically.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace emb::detail::io {

/// The bytes of a whole file: mapped read-only (mmap) when the file can be mapped, read into
/// memory otherwise (pipes, special files). Shared: a tensor viewing the bytes holds a
/// shared_ptr to them.
class FileBytes {
 public:
  /// Throws IoError "<op>: cannot open <path>: <reason>".
  static std::shared_ptr<const FileBytes> open(const std::string& path, const char* op);
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
