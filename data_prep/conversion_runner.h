#pragma once
// Runs a converter's plan: loads the source files on several threads, drops masks below
// the minimum area and images left without instances (both counted), encodes the masks
// and writes each split's shards in plan order (so the output does not depend on the
// thread count), then commits the output directory atomically.
#include <atomic>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "conversion.h"
#include "shard_output.h"

namespace sparser::prep {

struct SplitCounts {
  int64_t source_files = 0;
  int64_t images = 0;
  int64_t instances = 0;
};

struct ConversionReport {
  std::map<std::string, SplitCounts> splits;
  int64_t small_masks_dropped = 0;
  int64_t crowd_skipped = 0;
  int64_t polygon_parts_dropped = 0;
  int64_t annotations_without_mask = 0;
  int64_t images_without_instances = 0;
  std::vector<std::string> skipped_files;  // "<path>: <reason>"
  std::vector<std::string> ignored_files;  // the plan's: found in the source, read by no job
  double seconds = 0;
};

// Thrown when `stop` was raised (SIGINT/SIGTERM): nothing is committed.
class Interrupted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Writes the plan into `output` and commits it. Throws SourceError on the first bad file
// unless options.skip_errors, and Interrupted soon after `stop` becomes true (workers
// finish the file they are on).
ConversionReport run_conversion(Plan plan, const CommonOptions& options, const std::string& converter_version,
                                OutputDirectory& output, const std::atomic<bool>& stop);
void print_report(const ConversionReport& report, std::ostream& out);

}  // namespace sparser::prep
