#pragma once
// The output directory of one conversion, made atomically: everything is written into
// "<output>.partial-<pid>" and renamed into place by commit(). Without --overwrite an
// existing output is refused before any work; with it, the old directory is renamed
// aside, the new one renamed in, then the old one deleted. A conversion that fails or
// is interrupted leaves only the partial directory (removed on the way out when it can be).
#include <map>
#include <string>

#include "data/manifest.h"
#include "data/shard_writer.h"

namespace sparser::prep {

class OutputDirectory {
 public:
  OutputDirectory(std::string output, bool overwrite);
  ~OutputDirectory();
  const std::string& staging() const { return staging_; }
  void commit();

 private:
  std::string output_, staging_;
  bool committed_ = false;
};

// The shards and manifest of one split, rolling over to a new shard at the target size.
class SplitSink {
 public:
  SplitSink(std::string directory, data::Manifest manifest_template, int64_t target_bytes);
  void add(data::EncodedSample sample);
  // Writes the last shard and "<split>.manifest.json".
  void finish();
  int64_t num_samples() const { return manifest_.num_samples() + writer_samples_; }
  int64_t num_instances() const { return instances_; }

 private:
  void flush_shard();

  std::string directory_;
  data::Manifest manifest_;
  int64_t target_bytes_;
  std::unique_ptr<data::ShardWriter> writer_;
  int64_t writer_samples_ = 0;
  int64_t instances_ = 0;
};

}  // namespace sparser::prep
