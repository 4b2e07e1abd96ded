#pragma once
// A split as one random-access dataset: the manifest's shards, indexed by a global
// sample index 0..size()-1 (shard order, then order within a shard).
//
// Opening always checks that every listed shard exists with the listed byte size (cheap:
// catches missing, truncated and replaced files at once). The CRC-32 of the shard files
// is verified according to ChecksumCheck:
//   Background (default): on one background thread started at open, so neither opening
//     nor reading waits for it; a mismatch is thrown by the next read (any sample).
//   OnOpen: all files before the constructor returns (one full pass over the split).
//   Off: not at all (byte sizes only).
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "data/checksum_verifier.h"
#include "data/manifest.h"
#include "data/sample.h"
#include "data/shard_reader.h"

namespace sparser::data {

enum class ChecksumCheck { Background, OnOpen, Off };

class ShardDataset {
 public:
  explicit ShardDataset(const std::string& manifest_path, ChecksumCheck check = ChecksumCheck::Background);

  int64_t size() const { return shard_starts_.back(); }
  const Manifest& manifest() const { return manifest_; }
  // Thread-safe. Throws DataError for an index out of range, a damaged shard, or a
  // checksum mismatch found so far by the background check.
  EncodedSample read(int64_t global_index) const;
  // read() + decode; errors name the shard file and the sample.
  Sample get(int64_t global_index) const;
  // Blocks until the background checksum pass is done (returns at once for OnOpen and
  // Off); throws DataError naming the first damaged shard.
  void wait_for_checksums() const;

 private:
  const ShardReader& shard(size_t k) const;
  size_t shard_of(int64_t global_index) const;
  std::string shard_path(size_t k) const;

  std::string manifest_path_;
  std::string directory_;
  Manifest manifest_;
  std::vector<int64_t> shard_starts_;  // shards + 1 cumulative sample counts
  mutable std::vector<std::unique_ptr<ShardReader>> readers_;
  mutable std::unique_ptr<std::once_flag[]> opened_;
  std::unique_ptr<ChecksumVerifier> verifier_;  // Background only
};

}  // namespace sparser::data
