#pragma once
// Runs a converter's plan: loads the source files on several threads, drops masks below
// the minimum area and images left without instances (both counted), encodes the masks
// and writes each split's shards in plan order (so the output does not depend on the
// thread count), then commits the output directory atomically.
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "conversion.h"

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
  int64_t images_without_instances = 0;
  std::vector<std::string> skipped_files;  // "<path>: <reason>"
  double seconds = 0;
};

// Throws SourceError on the first bad file unless options.skip_errors.
ConversionReport run_conversion(Plan plan, const CommonOptions& options, const std::string& converter_version);
void print_report(const ConversionReport& report, std::ostream& out);

}  // namespace sparser::prep
