#pragma once
// A split as one random-access dataset: the manifest's shards, indexed by a global
// sample index 0..size()-1 (shard order, then order within a shard).
//
// Opening checks that every listed shard exists with the listed byte size (cheap, catches
// missing and truncated files at once). The CRC-32 of a shard's file is verified when that
// shard is first opened for reading (ChecksumCheck::OnFirstUse, the default: one pass
// over each file per process), or of all shards at open (OnOpen).
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "data/manifest.h"
#include "data/sample.h"
#include "data/shard_reader.h"

namespace sparser::data {

enum class ChecksumCheck { OnOpen, OnFirstUse, Off };

class ShardDataset {
 public:
  explicit ShardDataset(const std::string& manifest_path, ChecksumCheck check = ChecksumCheck::OnFirstUse);

  int64_t size() const { return shard_starts_.back(); }
  const Manifest& manifest() const { return manifest_; }
  // Thread-safe. Throws DataError for an index out of range or a damaged shard.
  EncodedSample read(int64_t global_index) const;
  // read() + decode; errors name the shard file and the sample.
  Sample get(int64_t global_index) const;
  // The shard file and the index inside it that hold `global_index`.
  std::pair<std::string, int64_t> locate(int64_t global_index) const;

 private:
  const ShardReader& shard(size_t k) const;
  void verify_checksum(size_t k) const;
  size_t shard_of(int64_t global_index) const;

  std::string manifest_path_;
  std::string directory_;
  Manifest manifest_;
  ChecksumCheck check_;
  std::vector<int64_t> shard_starts_;  // shards + 1 cumulative sample counts
  mutable std::vector<std::unique_ptr<ShardReader>> readers_;
  mutable std::unique_ptr<std::once_flag[]> opened_;
};

}  // namespace sparser::data
