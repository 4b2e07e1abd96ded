#pragma once
// The on-disk layout of a sparser shard (schema version 1), described in docs/data.md.
// Variable-length values (encoded images, encoded masks, strings) are stored as one
// contiguous uint8 dataset "<field>_bytes" plus an int64 "<field>_offsets" of length
// n + 1, so h5py reads item i as bytes[offsets[i]:offsets[i + 1]].
#include <stdexcept>
#include <string>

namespace sparser::data {

// Any problem with a shard, a manifest or a sample; the message names the file and
// the sample or field.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace shard_format {

inline constexpr int kSchemaVersion = 1;
inline constexpr const char* kFormatName = "sparser-shard";
inline constexpr const char* kManifestFormatName = "sparser-manifest";

// Root attributes.
inline constexpr const char* kAttrFormat = "format";
inline constexpr const char* kAttrSchemaVersion = "schema_version";
inline constexpr const char* kAttrDatasetName = "dataset";

// Per image (n images): encoded image (PNG/JPEG, decoded with OpenCV), original size,
// source file name, a dataset-specific integer id, a JSON object of further ids,
// and the range of this image's instances in the per-instance arrays.
inline constexpr const char* kImage = "images/encoded";
inline constexpr const char* kHeight = "images/height";
inline constexpr const char* kWidth = "images/width";
inline constexpr const char* kFileName = "images/file_name";
inline constexpr const char* kSourceId = "images/source_id";
inline constexpr const char* kMeta = "images/meta_json";
inline constexpr const char* kInstanceOffsets = "images/instance_offsets";

// Per instance (m instances): PNG-encoded 0/1 mask at the original image size, box
// (x0, y0, x1, y1) in original pixels with x1/y1 exclusive, class id, pixel area.
inline constexpr const char* kMask = "instances/mask_png";
inline constexpr const char* kBox = "instances/box";
inline constexpr const char* kClassId = "instances/class_id";
inline constexpr const char* kArea = "instances/area";

inline std::string bytes_of(const char* field) { return std::string(field) + "_bytes"; }
inline std::string offsets_of(const char* field) { return std::string(field) + "_offsets"; }

}  // namespace shard_format
}  // namespace sparser::data
