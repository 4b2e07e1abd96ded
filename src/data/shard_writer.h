#pragma once
// Writes one shard: samples are buffered in memory and written as whole datasets by
// finish(). sparser_prep writes shards into a staging directory that only replaces the
// output once every shard is complete (data_prep/shard_output.h).
#include <string>
#include <vector>

#include "data/sample.h"

namespace sparser::data {

class ShardWriter {
 public:
  ShardWriter(std::string path, std::string dataset_name);

  void add(EncodedSample sample);
  int64_t num_samples() const { return static_cast<int64_t>(samples_.size()); }
  int64_t num_instances() const { return num_instances_; }
  // Bytes of payload buffered so far (images + masks), to decide when a shard is full.
  int64_t payload_bytes() const { return payload_bytes_; }
  // Writes the HDF5 file; the writer is empty afterwards.
  void finish();

 private:
  std::string path_;
  std::string dataset_name_;
  std::vector<EncodedSample> samples_;
  int64_t num_instances_ = 0;
  int64_t payload_bytes_ = 0;
};

}  // namespace sparser::data
