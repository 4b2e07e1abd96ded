#include "data/shard_writer.h"

#include <utility>

#include "data/shard_format.h"
#include "io/hdf5_file.h"

namespace sparser::data {

namespace {

// Concatenates variable-length items into "<field>_bytes" + "<field>_offsets". The bytes
// stay contiguous and uncompressed (images and masks are PNG/JPEG already), so reading
// one item is a hyperslab read of exactly its bytes.
class BlobColumn {
 public:
  void append(const uint8_t* data, size_t size) {
    bytes_.insert(bytes_.end(), data, data + size);
    offsets_.push_back(static_cast<int64_t>(bytes_.size()));
  }
  void append(const std::string& s) { append(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }
  void append(const std::vector<uint8_t>& v) { append(v.data(), v.size()); }
  void write(io::Hdf5File& file, const char* field) const {
    file.write<uint8_t>(shard_format::bytes_of(field), bytes_, {static_cast<int64_t>(bytes_.size())});
    file.write<int64_t>(shard_format::offsets_of(field), offsets_, {static_cast<int64_t>(offsets_.size())});
  }

 private:
  std::vector<uint8_t> bytes_;
  std::vector<int64_t> offsets_{0};
};

}  // namespace

ShardWriter::ShardWriter(std::string path, std::string dataset_name)
    : path_(std::move(path)), dataset_name_(std::move(dataset_name)) {}

void ShardWriter::add(EncodedSample sample) {
  payload_bytes_ += static_cast<int64_t>(sample.image.size());
  for (const auto& instance : sample.instances) payload_bytes_ += static_cast<int64_t>(instance.mask_png.size());
  num_instances_ += static_cast<int64_t>(sample.instances.size());
  samples_.push_back(std::move(sample));
}

void ShardWriter::finish() {
  namespace f = shard_format;
  BlobColumn images, file_names, metas, masks;
  std::vector<int32_t> heights, widths, class_ids;
  std::vector<int64_t> source_ids, areas, instance_offsets{0};
  std::vector<float> boxes;
  for (const auto& s : samples_) {
    images.append(s.image);
    file_names.append(s.file_name);
    metas.append(s.meta_json);
    heights.push_back(s.height);
    widths.push_back(s.width);
    source_ids.push_back(s.source_id);
    for (const auto& instance : s.instances) {
      masks.append(instance.mask_png);
      boxes.insert(boxes.end(), instance.box.begin(), instance.box.end());
      class_ids.push_back(instance.class_id);
      areas.push_back(instance.area);
    }
    instance_offsets.push_back(instance_offsets.back() + static_cast<int64_t>(s.instances.size()));
  }
  const int64_t n = num_samples(), m = num_instances_;
  io::Hdf5File file(path_, io::Hdf5File::Mode::Truncate);
  file.write_string_attribute("/", f::kAttrFormat, f::kFormatName);
  file.write_int_attribute("/", f::kAttrSchemaVersion, f::kSchemaVersion);
  file.write_string_attribute("/", f::kAttrDatasetName, dataset_name_);
  images.write(file, f::kImage);
  file_names.write(file, f::kFileName);
  metas.write(file, f::kMeta);
  file.write<int32_t>(f::kHeight, heights, {n});
  file.write<int32_t>(f::kWidth, widths, {n});
  file.write<int64_t>(f::kSourceId, source_ids, {n});
  file.write<int64_t>(f::kInstanceOffsets, instance_offsets, {n + 1});
  masks.write(file, f::kMask);
  file.write<float>(f::kBox, boxes, {m, 4});
  file.write<int32_t>(f::kClassId, class_ids, {m});
  file.write<int64_t>(f::kArea, areas, {m});
  samples_.clear();
  num_instances_ = 0;
  payload_bytes_ = 0;
}

}  // namespace sparser::data
