#pragma once
// Files that are either completely written or not there at all: content goes to a
// temporary name in the same directory, is flushed, then renamed over the target.
#include <functional>
#include <string>

namespace sparser::util {

// Writes `content` to `path` atomically.
void write_file_atomically(const std::string& path, const std::string& content);
// Lets `write` produce the file at a temporary path, then renames it to `path`;
// the temporary file is removed if `write` throws.
void produce_file_atomically(const std::string& path, const std::function<void(const std::string& tmp_path)>& write);

}  // namespace sparser::util
