#pragma once
// Reads one shard. The small per-image and per-instance index arrays are loaded when the
// shard is opened; read() then fetches only the requested sample's encoded bytes.
// Safe to call read() from several threads: HDF5 calls are serialised (by a thread-safe
// HDF5 build, or io::Hdf5ThreadGuard otherwise); decoding happens outside, in the caller.
#include <string>
#include <vector>

#include "data/sample.h"
#include "io/hdf5_file.h"

namespace sparser::data {

class ShardReader {
 public:
  // Throws DataError naming the file if it is not a shard, has another schema version
  // or lacks a field.
  explicit ShardReader(const std::string& path);

  int64_t size() const { return static_cast<int64_t>(heights_.size()); }
  int64_t num_instances() const { return static_cast<int64_t>(class_ids_.size()); }
  const std::string& dataset_name() const { return dataset_name_; }
  const std::string& path() const { return file_.path(); }
  // Sample `index` of this shard (0-based); throws DataError if out of range.
  EncodedSample read(int64_t index) const;

 private:
  std::vector<uint8_t> read_blob(const char* field, const std::vector<int64_t>& offsets, int64_t item) const;
  [[noreturn]] void fail(const std::string& what) const;

  io::Hdf5File file_;
  std::string dataset_name_;
  std::vector<int64_t> image_offsets_, file_name_offsets_, meta_offsets_, mask_offsets_;
  std::vector<int32_t> heights_, widths_, class_ids_;
  std::vector<int64_t> source_ids_, instance_offsets_, areas_;
  std::vector<float> boxes_;
};

}  // namespace sparser::data
