#include "data/checksum_verifier.h"

#include "data/manifest.h"
#include "data/shard_format.h"

namespace sparser::data {

ChecksumVerifier::ChecksumVerifier(std::vector<File> files, std::string manifest_path)
    : files_(std::move(files)), manifest_path_(std::move(manifest_path)), thread_([this] { run(); }) {}

ChecksumVerifier::~ChecksumVerifier() {
  stopping_ = true;
  thread_.join();
}

void ChecksumVerifier::run() {
  std::string failure;
  for (const auto& file : files_) {
    try {
      const uint32_t crc = file_crc32(file.path, [this] { return !stopping_; });
      if (stopping_) break;
      if (crc != file.crc32)
        failure = file.path + ": checksum mismatch (crc32 " + crc32_hex(crc) + ", manifest " + manifest_path_ +
                  " lists " + crc32_hex(file.crc32) + ")";
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (!failure.empty()) break;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  failure_ = failure;
  failed_ = !failure.empty();
  finished_ = true;
  finished_changed_.notify_all();
}

void ChecksumVerifier::throw_if_failed() const {
  if (!failed_) return;  // the common case: one atomic load, no lock
  std::lock_guard<std::mutex> lock(mutex_);
  throw DataError(failure_);
}

void ChecksumVerifier::wait() const {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    finished_changed_.wait(lock, [this] { return finished_; });
  }
  throw_if_failed();
}

}  // namespace sparser::data
