#pragma once
// The output directory of one conversion, made atomically. The constructor refuses an
// existing output without `overwrite` (main creates it before any source file is read),
// removes staging directories left by killed runs, and creates "<output>.partial-<pid>",
// where everything is written. commit() flushes every file to disk (fsync), then moves
// the directory into place: with an existing output, the two are swapped in one atomic
// rename (renameat2 RENAME_EXCHANGE; where the file system lacks it, the old output is
// renamed aside first) and the old one deleted. A run that fails or is interrupted
// (SIGINT/SIGTERM) removes its staging directory on the way out; one killed outright
// leaves it, and the next run on the same output removes it.
#include <map>
#include <memory>
#include <string>

#include "data/manifest.h"
#include "data/shard_writer.h"

namespace sparser::prep {

class OutputDirectory {
 public:
  OutputDirectory(std::string output, bool overwrite);
  ~OutputDirectory();
  OutputDirectory(const OutputDirectory&) = delete;
  OutputDirectory& operator=(const OutputDirectory&) = delete;
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

 private:
  void flush_shard();

  std::string directory_;
  data::Manifest manifest_;
  int64_t target_bytes_;
  std::unique_ptr<data::ShardWriter> writer_;
};

}  // namespace sparser::prep
