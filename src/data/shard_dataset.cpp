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
      check_(check),
      shard_starts_{0},
      readers_(manifest_.shards.size()),
      opened_(new std::once_flag[manifest_.shards.size()]) {
  for (size_t k = 0; k < manifest_.shards.size(); ++k) {
    const auto& s = manifest_.shards[k];
    const fs::path file = fs::path(directory_) / s.file;
    std::error_code ec;
    const auto bytes = fs::file_size(file, ec);
    if (ec)
      throw DataError(manifest_path_ + ": shard '" + s.file + "' is listed but missing (" + file.string() + ")");
    if (static_cast<int64_t>(bytes) != s.bytes)
      throw DataError(file.string() + ": " + std::to_string(bytes) + " bytes, the manifest lists " +
                      std::to_string(s.bytes) + " (truncated or replaced)");
    if (check_ == ChecksumCheck::OnOpen) verify_checksum(k);
    shard_starts_.push_back(shard_starts_.back() + s.num_samples);
  }
}

void ShardDataset::verify_checksum(size_t k) const {
  const auto& s = manifest_.shards[k];
  const std::string file = (fs::path(directory_) / s.file).string();
  const uint32_t crc = file_crc32(file);
  if (crc != s.crc32)
    throw DataError(file + ": checksum mismatch (crc32 " + crc32_hex(crc) + ", manifest " + manifest_path_ +
                    " lists " + crc32_hex(s.crc32) + ")");
}

const ShardReader& ShardDataset::shard(size_t k) const {
  std::call_once(opened_[k], [&] {
    if (check_ == ChecksumCheck::OnFirstUse) verify_checksum(k);
    auto reader = std::make_unique<ShardReader>((fs::path(directory_) / manifest_.shards[k].file).string());
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

std::pair<std::string, int64_t> ShardDataset::locate(int64_t global_index) const {
  const size_t k = shard_of(global_index);
  return {manifest_.shards[k].file, global_index - shard_starts_[k]};
}

EncodedSample ShardDataset::read(int64_t global_index) const {
  const size_t k = shard_of(global_index);
  return shard(k).read(global_index - shard_starts_[k]);
}

Sample ShardDataset::get(int64_t global_index) const {
  const size_t k = shard_of(global_index);
  const int64_t local = global_index - shard_starts_[k];
  Sample sample = decode_sample(shard(k).read(local), shard(k).path() + ": sample " + std::to_string(local));
  sample.index = global_index;
  return sample;
}

}  // namespace sparser::data
