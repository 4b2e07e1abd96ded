#include "shard_output.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "conversion.h"

namespace sparser::prep {

namespace fs = std::filesystem;

namespace {

std::string shard_file_name(const std::string& split, size_t shard) {
  char number[16];
  std::snprintf(number, sizeof number, "%05zu", shard);
  return split + "-" + number + ".h5";
}

}  // namespace

OutputDirectory::OutputDirectory(std::string output, bool overwrite)
    : output_(fs::path(std::move(output)).lexically_normal().string()) {
  if (!output_.empty() && output_.back() == '/') output_.pop_back();
  if (fs::exists(output_) && !overwrite)
    throw SourceError(output_ + ": output exists; pass --overwrite to replace it (atomically)");
  staging_ = output_ + ".partial-" + std::to_string(::getpid());
  fs::remove_all(staging_);
  fs::create_directories(staging_);
}

OutputDirectory::~OutputDirectory() {
  if (committed_) return;
  std::error_code ignored;
  fs::remove_all(staging_, ignored);
}

void OutputDirectory::commit() {
  if (fs::exists(output_)) {
    const std::string old = output_ + ".old-" + std::to_string(::getpid());
    fs::rename(output_, old);
    fs::rename(staging_, output_);
    fs::remove_all(old);
  } else {
    fs::rename(staging_, output_);
  }
  committed_ = true;
}

SplitSink::SplitSink(std::string directory, data::Manifest manifest_template, int64_t target_bytes)
    : directory_(std::move(directory)), manifest_(std::move(manifest_template)), target_bytes_(target_bytes) {}

void SplitSink::add(data::EncodedSample sample) {
  if (!writer_) {
    const auto file = fs::path(directory_) / shard_file_name(manifest_.split, manifest_.shards.size());
    writer_ = std::make_unique<data::ShardWriter>(file.string(), manifest_.dataset);
  }
  instances_ += static_cast<int64_t>(sample.instances.size());
  writer_->add(std::move(sample));
  writer_samples_ = writer_->num_samples();
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
  writer_samples_ = 0;
}

void SplitSink::finish() {
  flush_shard();
  data::write_manifest(manifest_, (fs::path(directory_) / (manifest_.split + ".manifest.json")).string());
}

}  // namespace sparser::prep
