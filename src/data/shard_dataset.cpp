#include "data/shard_dataset.h"

#include <algorithm>
#include <filesystem>

#include "data/sample_codec.h"
#include "data/shard_format.h"

namespace sparser::data {

namespace fs = std::filesystem;

ShardDataset::ShardDataset(const std::string& manifest_path, ChecksumCheck check)
    : manifest_path_(manifest_path),
      directory_(fs::path(manifest_path).parent_path().string()),
      manifest_(read_manifest(manifest_path)),
      shard_starts_{0},
      readers_(manifest_.shards.size()),
      opened_(new std::once_flag[manifest_.shards.size()]) {
  std::vector<ChecksumVerifier::File> files;
  for (size_t k = 0; k < manifest_.shards.size(); ++k) {
    const auto& s = manifest_.shards[k];
    const std::string file = shard_path(k);
    std::error_code ec;
    const auto bytes = fs::file_size(file, ec);
    if (ec) throw DataError(manifest_path_ + ": shard '" + s.file + "' is listed but missing (" + file + ")");
    if (static_cast<int64_t>(bytes) != s.bytes)
      throw DataError(file + ": " + std::to_string(bytes) + " bytes, the manifest " + manifest_path_ + " lists " +
                      std::to_string(s.bytes) + " (truncated or replaced)");
    files.push_back({file, s.crc32});
    shard_starts_.push_back(shard_starts_.back() + s.num_samples);
  }
  if (check == ChecksumCheck::OnOpen) ChecksumVerifier(std::move(files), manifest_path_).wait();
  if (check == ChecksumCheck::Background) verifier_ = std::make_unique<ChecksumVerifier>(std::move(files), manifest_path_);
}

std::string ShardDataset::shard_path(size_t k) const {
  return (fs::path(directory_) / manifest_.shards[k].file).string();
}

const ShardReader& ShardDataset::shard(size_t k) const {
  std::call_once(opened_[k], [&] {
    auto reader = std::make_unique<ShardReader>(shard_path(k));
    if (reader->size() != manifest_.shards[k].num_samples)
      throw DataError(reader->path() + ": holds " + std::to_string(reader->size()) + " samples, the manifest lists " +
                      std::to_string(manifest_.shards[k].num_samples));
    readers_[k] = std::move(reader);
  });
  return *readers_[k];
}

size_t ShardDataset::shard_of(int64_t global_index) const {
  if (global_index < 0 || global_index >= size())
    throw DataError(manifest_path_ + ": sample " + std::to_string(global_index) + " out of range (split has " +
                    std::to_string(size()) + " samples)");
  const auto it = std::upper_bound(shard_starts_.begin(), shard_starts_.end(), global_index);
  return static_cast<size_t>(it - shard_starts_.begin() - 1);
}

EncodedSample ShardDataset::read(int64_t global_index) const {
  if (verifier_) verifier_->throw_if_failed();
  const size_t k = shard_of(global_index);
  return shard(k).read(global_index - shard_starts_[k]);
}

Sample ShardDataset::get(int64_t global_index) const {
  const size_t k = shard_of(global_index);
  Sample sample = decode_sample(read(global_index),
                                shard_path(k) + ": sample " + std::to_string(global_index - shard_starts_[k]));
  sample.index = global_index;
  return sample;
}

void ShardDataset::wait_for_checksums() const {
  if (verifier_) verifier_->wait();
}

}  // namespace sparser::data
