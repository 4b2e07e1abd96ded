#pragma once
// Files that are either completely written or not there at all: content goes to a
// temporary name in the same directory, is flushed, then renamed over the target.
// Files that grow (logs) grow by whole appends, never by half of one.
#include <functional>
#include <string>

namespace sparser::util {

// Writes `content` to `path` atomically.
void write_file_atomically(const std::string& path, const std::string& content);
// Lets `write` produce the file at a temporary path, then renames it to `path`;
// the temporary file is removed if `write` throws. A link is followed: the file it points
// to is replaced. A `path` that is there but no regular file (a directory, device or pipe,
// or a link to one) is an error.
void produce_file_atomically(const std::string& path, const std::function<void(const std::string& tmp_path)>& write);

// Removes the temporary files that produce_file_atomically left in `dir` (not below it)
// when its process was killed mid-write. Only for a directory no other process writes to.
void remove_stale_temporaries(const std::string& dir);

// A file opened (created if need be) for appending. An append that cannot be written
// completely (a full disk) is cut off the file again and throws naming the file, so a
// reader never sees half of it and the writer never loses one silently.
class AppendOnlyFile {
 public:
  explicit AppendOnlyFile(const std::string& path);
  ~AppendOnlyFile();
  AppendOnlyFile(const AppendOnlyFile&) = delete;
  AppendOnlyFile& operator=(const AppendOnlyFile&) = delete;
  void append(const std::string& text);

 private:
  std::string path_;
  int fd_;
};

}  // namespace sparser::util
