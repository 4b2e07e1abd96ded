#include "util/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace sparser::util {

namespace {
// Distinctive, so that cleaning up never takes a user's own "notes.tmp.1".
constexpr const char* kTemporaryInfix = ".sparser-tmp.";

std::string temporary_name(const std::string& path) { return path + kTemporaryInfix + std::to_string(::getpid()); }

bool is_temporary_name(const std::string& name) {
  const auto infix = name.rfind(kTemporaryInfix);
  if (infix == std::string::npos || infix == 0) return false;
  const auto pid = name.substr(infix + std::strlen(kTemporaryInfix));
  return !pid.empty() && std::all_of(pid.begin(), pid.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// fsync so that a crash right after the rename cannot leave an empty file behind.
void sync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// `error`: the errno of the failed write (0 where none is known).
std::runtime_error write_error(const std::string& path, int error) {
  return std::runtime_error(path + ": write failed: " + (error != 0 ? std::strerror(error) : "disk full?"));
}
}  // namespace

void produce_file_atomically(const std::string& named, const std::function<void(const std::string&)>& write) {
  // Through a link, the file it points to is replaced, not the link.
  const std::string path =
      std::filesystem::is_symlink(named) ? std::filesystem::weakly_canonical(named).string() : named;
  // The rename would put a file in the place of a device or pipe (--out /dev/null).
  const auto existing = std::filesystem::status(path).type();
  if (existing != std::filesystem::file_type::not_found && existing != std::filesystem::file_type::regular)
    throw std::runtime_error(named + ": exists and is not a regular file; name a file to write");
  // Said here, or the writer would name its temporary file.
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent))
    throw std::runtime_error(named + ": cannot write: " + parent.string() + " is not a directory");
  const auto tmp = temporary_name(path);
  try {
    write(tmp);
    sync_file(tmp);
    std::filesystem::rename(tmp, path);
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
}

void remove_stale_temporaries(const std::string& dir) {
  std::error_code ignored;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ignored))
    if (entry.is_regular_file(ignored) && is_temporary_name(entry.path().filename().string()))
      std::filesystem::remove(entry.path(), ignored);
}

void write_file_atomically(const std::string& path, const std::string& content) {
  produce_file_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw std::runtime_error(path + ": cannot create " + tmp + ": " + std::strerror(errno));
    errno = 0;
    out << content;
    out.close();
    if (!out) throw write_error(path, errno);
  });
}

AppendOnlyFile::AppendOnlyFile(const std::string& path)
    : path_(path), fd_(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) {
  if (fd_ < 0) throw std::runtime_error(path + ": cannot open for appending: " + std::strerror(errno));
}

AppendOnlyFile::~AppendOnlyFile() { ::close(fd_); }

void AppendOnlyFile::append(const std::string& text) {
  struct stat before {};
  if (::fstat(fd_, &before) != 0) throw std::runtime_error(path_ + ": cannot stat: " + std::strerror(errno));
  for (size_t written = 0; written < text.size();) {
    const auto n = ::write(fd_, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : 0;
      // Best effort: a reader skips a cut line anyway, but a whole file is nicer to read.
      [[maybe_unused]] const int ignored = ::ftruncate(fd_, before.st_size);
      throw write_error(path_, error);
    }
    written += static_cast<size_t>(n);
  }
}

}  // namespace sparser::util
