#include "shard_output.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "conversion.h"

namespace sparser::prep {

namespace fs = std::filesystem;

namespace {

std::string shard_file_name(const std::string& split, size_t shard) {
  char number[16];
  std::snprintf(number, sizeof number, "%05zu", shard);
  return split + "-" + number + ".h5";
}

// Flushes a file's or a directory's data and metadata to disk.
void sync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const std::string reason = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    throw SourceError(path + ": cannot flush to disk: " + reason);
  }
  ::close(fd);
}

// Removes "<output>.partial-<pid>" and "<output>.old-<pid>" directories whose process is
// gone (a run killed with SIGKILL or a power cut); those of a live process are left alone.
void remove_stale_staging(const std::string& output) {
  const fs::path parent = fs::path(output).parent_path().empty() ? fs::path(".") : fs::path(output).parent_path();
  const std::string name = fs::path(output).filename().string();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(parent, ec)) {
    const std::string other = entry.path().filename().string();
    for (const std::string tag : {".partial-", ".old-"}) {
      const std::string prefix = name + tag;
      if (other.compare(0, prefix.size(), prefix) != 0) continue;
      const std::string pid_text = other.substr(prefix.size());
      if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
      const auto pid = static_cast<pid_t>(std::stol(pid_text));
      if (::kill(pid, 0) != 0 && errno == ESRCH) fs::remove_all(entry.path(), ec);
    }
  }
}

}  // namespace

OutputDirectory::OutputDirectory(std::string output, bool overwrite)
    : output_(fs::path(std::move(output)).lexically_normal().string()) {
  if (!output_.empty() && output_.back() == '/') output_.pop_back();
  if (fs::exists(output_) && !overwrite)
    throw SourceError(output_ + ": output exists; pass --overwrite to replace it (atomically)");
  remove_stale_staging(output_);
  staging_ = output_ + ".partial-" + std::to_string(::getpid());
  fs::remove_all(staging_);  // left by an earlier process with our pid
  fs::create_directories(staging_);
}

OutputDirectory::~OutputDirectory() {
  if (committed_) return;
  std::error_code ignored;
  fs::remove_all(staging_, ignored);
}

void OutputDirectory::commit() {
  for (const auto& entry : fs::directory_iterator(staging_)) sync_path(entry.path().string());
  sync_path(staging_);
  if (fs::exists(output_)) {
    // Swap in one step, so the output path always holds a complete conversion.
    if (::renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, output_.c_str(), RENAME_EXCHANGE) == 0) {
      committed_ = true;
      fs::remove_all(staging_);  // now the old output
    } else {
      const std::string old = output_ + ".old-" + std::to_string(::getpid());
      fs::rename(output_, old);
      fs::rename(staging_, output_);
      committed_ = true;
      fs::remove_all(old);
    }
  } else {
    fs::rename(staging_, output_);
    committed_ = true;
  }
  const fs::path parent = fs::path(output_).parent_path();
  sync_path(parent.empty() ? "." : parent.string());
}

SplitSink::SplitSink(std::string directory, data::Manifest manifest_template, int64_t target_bytes)
    : directory_(std::move(directory)), manifest_(std::move(manifest_template)), target_bytes_(target_bytes) {}

void SplitSink::add(data::EncodedSample sample) {
  if (!writer_) {
    const auto file = fs::path(directory_) / shard_file_name(manifest_.split, manifest_.shards.size());
    writer_ = std::make_unique<data::ShardWriter>(file.string(), manifest_.dataset);
  }
  writer_->add(std::move(sample));
  if (writer_->payload_bytes() >= target_bytes_) flush_shard();
}

void SplitSink::flush_shard() {
  if (!writer_) return;
  data::ManifestShard shard;
  shard.file = shard_file_name(manifest_.split, manifest_.shards.size());
  const std::string file = (fs::path(directory_) / shard.file).string();
  shard.num_samples = writer_->num_samples();
  shard.num_instances = writer_->num_instances();
  writer_->finish();
  shard.bytes = static_cast<int64_t>(fs::file_size(file));
  shard.crc32 = data::file_crc32(file);
  manifest_.shards.push_back(shard);
  writer_.reset();
}

void SplitSink::finish() {
  flush_shard();
  data::write_manifest(manifest_, (fs::path(directory_) / (manifest_.split + ".manifest.json")).string());
}

}  // namespace sparser::prep
