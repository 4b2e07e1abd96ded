#pragma once
// Verifies the CRC-32 of a split's shard files on one background thread, so that opening
// a dataset returns at once and reading never waits for a whole-file pass (a COCO train
// split is ~18 GB). A mismatch or read error is kept and thrown by the next
// throw_if_failed() (ShardDataset calls it on every read), naming the file.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sparser::data {

class ChecksumVerifier {
 public:
  struct File {
    std::string path;
    uint32_t crc32 = 0;  // expected
  };
  // Starts checking `files` in order; `manifest_path` is named in mismatch errors.
  ChecksumVerifier(std::vector<File> files, std::string manifest_path);
  // Stops the check (within one 1 MiB block) and joins the thread.
  ~ChecksumVerifier();
  ChecksumVerifier(const ChecksumVerifier&) = delete;
  ChecksumVerifier& operator=(const ChecksumVerifier&) = delete;

  // Throws DataError if a file checked so far is damaged; never waits.
  void throw_if_failed() const;
  // Waits until every file is checked, then throws like throw_if_failed().
  void wait() const;

 private:
  void run();

  std::vector<File> files_;
  std::string manifest_path_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> failed_{false};
  mutable std::mutex mutex_;
  mutable std::condition_variable finished_changed_;
  bool finished_ = false;
  std::string failure_;
  std::thread thread_;  // last: started once everything above is built
};

}  // namespace sparser::data
