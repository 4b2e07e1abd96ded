#pragma once
// What every converter produces: a plan of jobs, each loading one source file (or, for
// CT, one volume) into images with full-size instance masks. The shared runner
// (conversion_runner.h) filters, encodes and writes them.
#include <opencv2/core.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace sparser::prep {

struct SourceMask {
  cv::Mat mask;  // CV_8U, non-zero = instance, at the image's size
  int32_t class_id = 0;
};

struct SourceImage {
  std::vector<uint8_t> encoded;  // PNG/JPEG bytes as stored in the shard
  int height = 0;
  int width = 0;
  std::string file_name;  // the annotation file's file_name (COCO format), else relative to the dataset root
  int64_t source_id = -1;
  std::string meta_json = "{}";
  std::vector<SourceMask> masks;
  int64_t crowd_skipped = 0;
  int64_t polygon_parts_dropped = 0;  // COCO-format polygon parts with fewer than 3 points
  // Annotations that give no mask: COCO-format ones without a usable segmentation, VOC
  // objects lying on no class.
  int64_t annotations_without_mask = 0;
};

struct ImageJob {
  std::string split;
  std::string source_path;  // named in errors
  std::function<std::vector<SourceImage>()> load;
};

struct Plan {
  std::string dataset;
  std::vector<std::string> splits;
  std::string class_names_json = "{}";  // {"<id>": "<name>", ...}
  std::vector<ImageJob> jobs;
  std::vector<std::string> ignored_files;  // "<path>: <why>": in the source, but read by no job
};

// Settings shared by all subcommands.
struct CommonOptions {
  std::string output;
  bool overwrite = false;
  int64_t min_area = 0;
  int threads = 1;
  int64_t shard_size_mb = 1024;
  int64_t limit = 0;  // source files per split; 0 = all
  bool skip_errors = false;
  bool keep_crowd = false;
  uint64_t seed = 0;
};

// An input that cannot be used; the message names the file.
class SourceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads a whole file; throws SourceError naming it if missing or unreadable.
std::vector<uint8_t> read_file_bytes(const std::string& path);
// Decodes an image file (any OpenCV format) as stored, ignoring EXIF orientation; throws
// SourceError naming it.
cv::Mat decode_image_file(const std::string& path, const std::vector<uint8_t>& bytes, int flags);
// Reads and decodes the image at `path` (any OpenCV format) into a SourceImage without
// instances: its bytes kept as-is when PNG/JPEG (else re-encoded as PNG), its size, and
// `file_name` (as SourceImage::file_name). Throws SourceError naming the file.
SourceImage read_source_image(const std::string& path, const std::string& file_name);
// One mask per 8-connected component of (label != 0).
std::vector<SourceMask> connected_component_masks(const cv::Mat& label, int32_t class_id);
// Files in `directory` (not recursive) with one of `extensions` (lower case, with the
// dot), sorted by name; throws SourceError if the directory is missing.
std::vector<std::string> list_files(const std::string& directory, const std::vector<std::string>& extensions);
// A seeded split of `count` items: true for the round(first_fraction * count) items a
// SeededRng(seed) shuffle puts first, false for the rest (each side keeps input order).
// Throws SourceError naming `option` if the fraction is not within [0, 1].
std::vector<bool> seeded_split(size_t count, double first_fraction, uint64_t seed, const std::string& option);

}  // namespace sparser::prep
