#include "io/file_io.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <random>

#include "emb/error.h"
#include "emb/io/word_vectors.h"

namespace emb::detail::io {

namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

// Closes a descriptor on scope exit.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

// Opens path read-only and stats it; throws IoError "<op>: cannot open/stat <path>: <reason>",
// or "<op>: <path> is a directory".
int open_file(const std::string& path, const char* op, struct stat* st) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw IoError(std::string(op) + ": cannot open " + path + ": " + errno_text(errno));
  }
  FdCloser closer{fd};
  if (::fstat(fd, st) != 0) {
    throw IoError(std::string(op) + ": cannot stat " + path + ": " + errno_text(errno));
  }
  if (S_ISDIR(st->st_mode)) throw IoError(std::string(op) + ": " + path + " is a directory");
  closer.fd = -1;
  return fd;
}

// Reads up to n bytes at offset into out (fewer at the end of the file); returns the count.
std::size_t pread_fully(int fd, std::byte* out, std::size_t n, std::uint64_t offset,
                        const std::string& path, const char* op) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(fd, out + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw IoError(std::string(op) + ": cannot read " + path + ": " + errno_text(errno));
    }
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  return done;
}

// Reads fd to its end, growing the buffer as the bytes come; *n is the count.
std::unique_ptr<std::byte[]> read_all(int fd, const std::string& path, const char* op,
                                      std::size_t* n) {
  std::size_t cap = 1 << 16;
  *n = 0;
  std::unique_ptr<std::byte[]> buf(new std::byte[cap]);
  for (;;) {
    if (*n == cap) {
      std::unique_ptr<std::byte[]> bigger(new std::byte[cap * 2]);
      std::memcpy(bigger.get(), buf.get(), *n);
      buf = std::move(bigger);
      cap *= 2;
    }
    const ssize_t got = ::read(fd, buf.get() + *n, cap - *n);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw IoError(std::string(op) + ": cannot read " + path + ": " + errno_text(errno));
    }
    if (got == 0) break;
    *n += static_cast<std::size_t>(got);
  }
  return buf;
}

// The first head_length(...) bytes of a regular file of the given size, read with pread().
std::vector<std::byte> read_head(int fd, std::uint64_t size, HeadLength head_length,
                                 const std::string& path, const char* op) {
  std::vector<std::byte> head(static_cast<std::size_t>(std::min<std::uint64_t>(size, kHeadProbe)));
  head.resize(pread_fully(fd, head.data(), head.size(), 0, path, op));
  const std::uint64_t want = std::min(head_length(head, size), size);
  if (want > head.size() && head.size() == std::min<std::uint64_t>(size, kHeadProbe)) {
    const std::size_t have = head.size();
    head.resize(static_cast<std::size_t>(want));
    head.resize(have + pread_fully(fd, head.data() + have, head.size() - have, have, path, op));
  }
  return head;
}

}  // namespace

std::shared_ptr<const FileBytes> FileBytes::open(const std::string& path, const char* op) {
  return open(path, op, nullptr, nullptr);
}

std::shared_ptr<const FileBytes> FileBytes::open(const std::string& path, const char* op,
                                                 HeadLength head_length,
                                                 std::vector<std::byte>* head) {
  if (head) head->clear();
  struct stat st {};
  const int fd = open_file(path, op, &st);
  FdCloser closer{fd};
  std::shared_ptr<FileBytes> f(new FileBytes());
  f->path_ = path;
  if (S_ISREG(st.st_mode)) {
    f->size_ = static_cast<std::size_t>(st.st_size);
    if (f->size_ == 0) return f;
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) {
      f->data_ = static_cast<const std::byte*>(p);
      f->mapped_ = true;
      if (head && head_length) *head = read_head(fd, f->size_, head_length, path, op);
      return f;
    }
    f->size_ = 0;
  }
  // Not mappable: read it all.
  f->buffer_ = read_all(fd, path, op, &f->size_);
  f->data_ = f->buffer_.get();
  return f;
}

void advise_random(const void* p, std::size_t n) {
  if (n == 0) return;
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(p) / page * page;
  const auto end = (reinterpret_cast<std::uintptr_t>(p) + n + page - 1) / page * page;
  ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_RANDOM);
}

FileStart read_file_start(const std::string& path, const char* op, std::size_t max_bytes) {
  FileStart out;
  struct stat st {};
  const int fd = open_file(path, op, &st);
  FdCloser closer{fd};
  if (S_ISREG(st.st_mode)) {
    out.size = static_cast<std::uint64_t>(st.st_size);
    out.bytes.resize(static_cast<std::size_t>(std::min<std::uint64_t>(out.size, max_bytes)));
    out.bytes.resize(pread_fully(fd, out.bytes.data(), out.bytes.size(), 0, path, op));
    return out;
  }
  std::size_t n = 0;
  const std::unique_ptr<std::byte[]> all = read_all(fd, path, op, &n);
  out.size = n;
  out.bytes.assign(all.get(), all.get() + std::min(n, max_bytes));
  return out;
}

std::shared_ptr<const FileBytes> FileBytes::borrow(std::span<const std::byte> bytes,
                                                   std::string name) {
  std::shared_ptr<FileBytes> f(new FileBytes());
  f->data_ = bytes.data();
  f->size_ = bytes.size();
  f->path_ = std::move(name);
  return f;
}

FileBytes::~FileBytes() {
  if (mapped_) ::munmap(const_cast<std::byte*>(data_), size_);
}

// ---------------------------------------------------------------------------------------------

namespace {

constexpr std::size_t kWriteBuffer = 1 << 20;

std::string directory_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

AtomicWriter::AtomicWriter(const std::string& path, const char* op) : path_(path), op_(op) {
  const auto slash = path.find_last_of('/');
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.empty()) throw IoError(op_ + ": " + path + " names no file");
  // .<name>.tmp-XXXXXX beside the target, so that rename() stays within one file system.
  std::string tmpl = (slash == std::string::npos ? std::string() : path.substr(0, slash + 1)) +
                     "." + base + ".tmp-XXXXXX";
  fd_ = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd_ < 0) {
    throw IoError(op_ + ": cannot create a temporary file beside " + path + ": " +
                  errno_text(errno));
  }
  tmp_path_ = tmpl;
  buffer_.reserve(kWriteBuffer);
}

AtomicWriter::~AtomicWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!tmp_path_.empty()) ::unlink(tmp_path_.c_str());
}

void AtomicWriter::fail(const std::string& what) const {
  throw IoError(op_ + ": " + what + " " + path_ + ": " + errno_text(errno));
}

void AtomicWriter::flush_buffer() {
  const char* p = buffer_.data();
  std::size_t left = buffer_.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot write");
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  buffer_.clear();
}

void AtomicWriter::write(const void* data, std::size_t n) {
  if (fd_ < 0) throw IoError(op_ + ": write after commit of " + path_);
  const char* p = static_cast<const char*>(data);
  if (buffer_.size() + n > kWriteBuffer) flush_buffer();
  if (n >= kWriteBuffer) {  // large blocks go straight through
    buffer_.assign(p, n);
    flush_buffer();
    return;
  }
  buffer_.append(p, n);
}

void AtomicWriter::commit() {
  if (fd_ < 0) throw IoError(op_ + ": commit twice of " + path_);
  flush_buffer();
  if (::fsync(fd_) != 0) fail("cannot fsync the temporary file of");
  if (::fchmod(fd_, 0644) != 0) fail("cannot set the mode of");
  if (::close(fd_) != 0) {
    fd_ = -1;
    fail("cannot close the temporary file of");
  }
  fd_ = -1;
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) fail("cannot rename onto");
  tmp_path_.clear();
  // The rename is durable once the directory entry is.
  const std::string dir = directory_of(path_);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) fail("cannot open the directory of");
  FdCloser closer{dfd};
  if (::fsync(dfd) != 0 && errno != EINVAL) fail("cannot fsync the directory of");
}

// ---------------------------------------------------------------------------------------------

namespace {

constexpr std::array<std::uint32_t, 256> make_crc32c_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82f63b78u : c >> 1;  // reflected
    t[i] = c;
  }
  return t;
}

constexpr auto kCrc32cTable = make_crc32c_table();

}  // namespace

std::uint32_t crc32c(std::span<const std::byte> bytes, std::uint32_t crc) {
  crc = ~crc;
  for (std::byte b : bytes) {
    crc = kCrc32cTable[(crc ^ static_cast<std::uint8_t>(b)) & 0xffu] ^ (crc >> 8);
  }
  return ~crc;
}

bool is_valid_utf8(std::string_view s) {
  return emb::io::find_invalid_utf8(s) == std::string_view::npos;
}

}  // namespace emb::detail::io

namespace emb::io {

std::size_t find_invalid_utf8(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    std::uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    static constexpr std::uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += len;
  }
  return std::string_view::npos;
}

}  // namespace emb::io
