#include "data/shard_reader.h"

#include <algorithm>
#include <utility>

#include "data/shard_format.h"

namespace sparser::data {

namespace f = shard_format;

namespace {

io::Hdf5File open_shard(const std::string& path) {
  const io::Hdf5ThreadGuard guard;
  try {
    return io::Hdf5File(path, io::Hdf5File::Mode::Read);
  } catch (const io::Hdf5Error& e) {
    throw DataError(e.what());
  }
}

}  // namespace

ShardReader::ShardReader(const std::string& path) : file_(open_shard(path)) {
  const io::Hdf5ThreadGuard guard;
  if (!file_.has_attribute("/", f::kAttrFormat) || file_.read_string_attribute("/", f::kAttrFormat) != f::kFormatName)
    fail(std::string("not a sparser shard (root attribute '") + f::kAttrFormat + "' is not '" + f::kFormatName + "')");
  const int64_t version = file_.read_int_attribute("/", f::kAttrSchemaVersion);
  if (version != f::kSchemaVersion)
    fail("schema version " + std::to_string(version) + ", this build reads version " +
         std::to_string(f::kSchemaVersion));
  dataset_name_ = file_.has_attribute("/", f::kAttrDatasetName)
                      ? file_.read_string_attribute("/", f::kAttrDatasetName) : std::string();
  const auto require = [&](const std::string& field) {
    if (!file_.exists(field)) fail("missing field '" + field + "'");
    return field;
  };
  for (const char* blob : {f::kImage, f::kFileName, f::kMeta, f::kMask}) require(f::bytes_of(blob));
  try {
    image_offsets_ = file_.read<int64_t>(require(f::offsets_of(f::kImage)));
    file_name_offsets_ = file_.read<int64_t>(require(f::offsets_of(f::kFileName)));
    meta_offsets_ = file_.read<int64_t>(require(f::offsets_of(f::kMeta)));
    mask_offsets_ = file_.read<int64_t>(require(f::offsets_of(f::kMask)));
    heights_ = file_.read<int32_t>(require(f::kHeight));
    widths_ = file_.read<int32_t>(require(f::kWidth));
    source_ids_ = file_.read<int64_t>(require(f::kSourceId));
    instance_offsets_ = file_.read<int64_t>(require(f::kInstanceOffsets));
    boxes_ = file_.read<float>(require(f::kBox));
    class_ids_ = file_.read<int32_t>(require(f::kClassId));
    areas_ = file_.read<int64_t>(require(f::kArea));
  } catch (const io::Hdf5Error& e) {
    throw DataError(e.what());
  }
  const size_t n = heights_.size(), m = class_ids_.size();
  const bool consistent = widths_.size() == n && source_ids_.size() == n && image_offsets_.size() == n + 1 &&
                          file_name_offsets_.size() == n + 1 && meta_offsets_.size() == n + 1 &&
                          instance_offsets_.size() == n + 1 && instance_offsets_.back() == static_cast<int64_t>(m) &&
                          mask_offsets_.size() == m + 1 && boxes_.size() == 4 * m && areas_.size() == m;
  if (!consistent) fail("field lengths disagree (per-image fields must have one entry per image, offsets one more)");
  // Offsets index the other fields: out of order, they would read past them.
  const std::pair<std::string, const std::vector<int64_t>*> offsets[] = {
      {f::kInstanceOffsets, &instance_offsets_},
      {f::offsets_of(f::kImage), &image_offsets_},
      {f::offsets_of(f::kFileName), &file_name_offsets_},
      {f::offsets_of(f::kMeta), &meta_offsets_},
      {f::offsets_of(f::kMask), &mask_offsets_}};
  for (const auto& [field, values] : offsets)
    if (values->front() != 0 || !std::is_sorted(values->begin(), values->end()))
      fail("'" + field + "' must start at 0 and never decrease");
}

void ShardReader::fail(const std::string& what) const { throw DataError(file_.path() + ": " + what); }

std::vector<uint8_t> ShardReader::read_blob(const char* field, const std::vector<int64_t>& offsets,
                                            int64_t item) const {
  try {
    return file_.read_slice<uint8_t>(f::bytes_of(field), offsets[item], offsets[item + 1] - offsets[item]);
  } catch (const io::Hdf5Error& e) {
    throw DataError(std::string(e.what()) + " (item " + std::to_string(item) + ")");
  }
}

EncodedSample ShardReader::read(int64_t index) const {
  if (index < 0 || index >= size())
    fail("sample " + std::to_string(index) + " out of range (shard has " + std::to_string(size()) + ")");
  const io::Hdf5ThreadGuard guard;
  EncodedSample s;
  s.image = read_blob(f::kImage, image_offsets_, index);
  const auto name = read_blob(f::kFileName, file_name_offsets_, index);
  s.file_name.assign(name.begin(), name.end());
  const auto meta = read_blob(f::kMeta, meta_offsets_, index);
  s.meta_json.assign(meta.begin(), meta.end());
  s.height = heights_[index];
  s.width = widths_[index];
  s.source_id = source_ids_[index];
  for (int64_t k = instance_offsets_[index]; k < instance_offsets_[index + 1]; ++k) {
    EncodedInstance instance;
    instance.mask_png = read_blob(f::kMask, mask_offsets_, k);
    instance.box = {boxes_[4 * k], boxes_[4 * k + 1], boxes_[4 * k + 2], boxes_[4 * k + 3]};
    instance.class_id = class_ids_[k];
    instance.area = areas_[k];
    s.instances.push_back(std::move(instance));
  }
  return s;
}

}  // namespace sparser::data
