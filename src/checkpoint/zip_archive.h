#pragma once
// The ZIP container of torch.save files: a reader for what PyTorch (or any zip tool)
// writes, and a writer producing the layout PyTorch itself uses (stored entries whose
// data starts on a 64-byte boundary). Torch-free on purpose: byte-level code only.
#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace sparser::checkpoint {

// Any problem reading or writing a checkpoint; the message names the file.
class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 stored, 8 deflate
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;
  uint64_t local_header_offset = 0;
};

class ZipReader {
 public:
  // Opens `path` and reads its central directory; throws CheckpointError if the file is
  // not a readable zip archive.
  explicit ZipReader(const std::string& path);
  ~ZipReader();
  ZipReader(const ZipReader&) = delete;
  ZipReader& operator=(const ZipReader&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<ZipEntry>& entries() const { return entries_; }
  // nullptr if there is no entry of that name.
  const ZipEntry* find(const std::string& name) const;
  // Decompresses `entry` into `destination` (entry.size bytes) and checks its CRC-32.
  void read(const ZipEntry& entry, void* destination) const;
  std::string read(const ZipEntry& entry) const;

 private:
  void read_at(uint64_t offset, uint64_t size, void* destination, const char* what) const;
  uint64_t data_offset(const ZipEntry& entry) const;
  [[noreturn]] void fail(const std::string& problem) const;

  std::string path_;
  int fd_ = -1;
  uint64_t file_size_ = 0;
  std::vector<ZipEntry> entries_;
};

class ZipWriter {
 public:
  // Creates (truncates) `path`. Nothing is valid until finish() has returned.
  explicit ZipWriter(const std::string& path);
  void add(const std::string& name, const void* data, uint64_t size);
  void add(const std::string& name, const std::string& data) { add(name, data.data(), data.size()); }
  // Writes the central directory and closes the file.
  void finish();

 private:
  void write(const void* data, uint64_t size);
  [[noreturn]] void fail(const std::string& problem) const;

  std::string path_;
  std::ofstream out_;
  uint64_t offset_ = 0;
  std::vector<ZipEntry> entries_;
};

}  // namespace sparser::checkpoint
