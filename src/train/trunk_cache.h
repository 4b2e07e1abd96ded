#pragma once
// Frozen-trunk cache: when no tensor of the image encoder's trunk (patch embedding,
// position embedding, blocks) trains, the trunk output of a sample (1×g×g×C, before
// the neck) is the same in every epoch and every seed, so it is computed once and
// reused, kept in memory or in an HDF5 file per rank.
//
// A cache is identified by a key text that names everything the trunk output depends
// on: the trunk's tensors (a 64-bit FNV-1a hash of names, shapes, dtypes and bytes),
// the model dimensions, the pre-processing version, the split (its manifest's shards,
// counts and CRC-32s), the role (train or eval pre-processing path), device, precision
// and the storage dtype. A disk cache whose stored key differs is rebuilt with a log
// line, never reused; a row whose CRC-32 does not match is computed again. A disk cache
// is an optional speed-up: one that another process holds, or that fails to read or
// write, leaves the run computing trunk features as without it, with a log line.
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/manifest.h"
#include "model/sam.h"
#include "util/file_lock.h"

namespace sparser::io {
class Hdf5File;
}

namespace sparser::train {

enum class TrunkCacheMode { Off, Memory, Disk };
enum class TrunkCacheDtype { Fp32, Fp16 };

std::string to_string(TrunkCacheMode mode);
std::string to_string(TrunkCacheDtype dtype);

// Bumped when the image pre-processing (ResizeLongestSide, normalisation, padding) or
// the trunk computation changes in a way that changes trunk outputs.
// 2: shard images of more than 8 bits rescaled to 8 (data::to_eight_bit), not cut to their high byte.
inline constexpr int kTrunkPreprocessVersion = 2;
// Bumped when the on-disk layout changes (2: per-row CRC-32s).
inline constexpr int kTrunkCacheFormatVersion = 2;

// Stable 64-bit FNV-1a over the names, shapes, dtypes and bytes of every parameter and
// buffer of the trunk (patch_embed, pos_embed, blocks — including hook modules
// registered inside the blocks). Not over the neck.
uint64_t trunk_hash(model::ImageEncoderViTImpl& encoder);

struct TrunkCacheKey {
  std::string text;  // human-readable, one fact per line
  uint64_t hash() const;     // FNV-1a of text
  std::string hex() const;   // 16 hex digits of hash()
};

// `role` is "train" or "eval" (the two pre-processing paths), `device` the device the
// trunk runs on, `precision` train.precision.
TrunkCacheKey make_trunk_cache_key(const model::SamConfig& config, uint64_t trunk_hash,
                                   const data::Manifest& manifest, const std::string& role,
                                   const std::string& device, const std::string& precision, TrunkCacheDtype dtype);

struct TrunkCacheOptions {
  TrunkCacheMode mode = TrunkCacheMode::Memory;
  TrunkCacheDtype dtype = TrunkCacheDtype::Fp32;
  int64_t num_samples = 0;            // N: valid indices are 0..N-1
  std::vector<int64_t> sample_shape;  // {g, g, C}
  std::string dir;                    // disk mode: directory of the cache files
  int64_t rank = 0;                   // disk mode: one file per rank
};

using TrunkCacheLog = std::function<void(const std::string&)>;

// Thrown by the disk cache's constructor when another process holds its file.
class TrunkCacheBusy : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class TrunkCache {
 public:
  // Disk mode takes an exclusive lock on <dir>/trunk-<keyhex>-rank<r>.h5.lock (throws
  // TrunkCacheBusy when another process holds it), then opens the .h5 file when its
  // stored key and format match, else (re)creates it, saying why through `log`.
  TrunkCache(TrunkCacheKey key, TrunkCacheOptions options, const TrunkCacheLog& log = {});
  ~TrunkCache();
  TrunkCache(const TrunkCache&) = delete;
  TrunkCache& operator=(const TrunkCache&) = delete;

  // The cached trunk output of sample `index` as float32 1×g×g×C on the CPU, or nothing
  // (also for a disk row that fails its CRC-32, which the next put() writes again).
  // In memory fp32 mode this is the stored tensor itself: treat it as read-only.
  std::optional<torch::Tensor> get(int64_t index);
  // Stores the trunk output (1×g×g×C or g×g×C, any device and float dtype) of `index`.
  void put(int64_t index, const torch::Tensor& trunk);

  // Where get/put failures and bad rows are reported: the current run's log.
  void set_log(const TrunkCacheLog& log) { log_ = log; }

  int64_t entries() const { return entries_; }  // samples present
  int64_t hits() const { return hits_; }
  int64_t misses() const { return misses_; }
  int64_t corrupt_rows() const { return corrupt_rows_; }  // disk rows that failed their CRC-32
  bool disabled() const { return disabled_; }             // after a disk read or write failed
  const TrunkCacheKey& key() const { return key_; }
  const TrunkCacheOptions& options() const { return options_; }
  const std::string& path() const { return path_; }  // disk mode: the file
  int64_t bytes_per_sample() const;

  // Name of the disk file for a key and rank.
  static std::string file_name(const TrunkCacheKey& key, int64_t rank);

 private:
  void check_index(int64_t index) const;
  void lock_file();
  void open_file();
  void create_file();
  std::optional<torch::Tensor> read_row(int64_t index);
  void write_row(int64_t index, const torch::Tensor& stored);
  void disable(const std::string& what, const std::exception& error);

  TrunkCacheKey key_;
  TrunkCacheOptions options_;
  std::string path_;
  TrunkCacheLog log_;
  std::optional<util::FileLock> lock_;  // disk mode: held for the object's lifetime
  std::vector<torch::Tensor> memory_;   // memory mode: stored (fp32 or fp16) or undefined
  std::vector<uint8_t> present_;        // disk mode: the file's present flags
  std::vector<uint32_t> crc32_;         // disk mode: the file's row CRC-32s
  std::unique_ptr<io::Hdf5File> file_;
  int64_t entries_ = 0, hits_ = 0, misses_ = 0, corrupt_rows_ = 0;
  bool disabled_ = false;
};

// Process-wide registry, so that runs of one sparser_run process with the same key
// (e.g. the seeds of a sweep point) share a cache: returns the registered cache of
// (key, mode, dtype, dir, rank) or creates and registers it; either way its log becomes
// `log`. Throws what the constructor throws, registering nothing.
std::shared_ptr<TrunkCache> acquire_trunk_cache(const TrunkCacheKey& key, const TrunkCacheOptions& options,
                                                const TrunkCacheLog& log = {});
// Drops every registered cache not among `keep` (bounds memory across a sweep whose
// runs have different keys).
void retain_trunk_caches(const std::vector<std::shared_ptr<TrunkCache>>& keep);

}  // namespace sparser::train
