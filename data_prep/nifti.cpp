#include "nifti.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "conversion.h"

namespace sparser::prep {

namespace {

template <typename T>
T field(const unsigned char* header, size_t offset, bool swap) {
  unsigned char raw[sizeof(T)];
  std::memcpy(raw, header + offset, sizeof(T));
  if (swap) std::reverse(raw, raw + sizeof(T));
  T value;
  std::memcpy(&value, raw, sizeof(T));
  return value;
}

template <typename T>
void convert(const unsigned char* raw, size_t count, bool swap, float* out) {
  for (size_t i = 0; i < count; ++i) out[i] = static_cast<float>(field<T>(raw, i * sizeof(T), swap));
}

void convert_voxels(int16_t datatype, const unsigned char* raw, size_t count, bool swap, float* out) {
  switch (datatype) {
    case 2: convert<uint8_t>(raw, count, swap, out); break;
    case 256: convert<int8_t>(raw, count, swap, out); break;
    case 4: convert<int16_t>(raw, count, swap, out); break;
    case 512: convert<uint16_t>(raw, count, swap, out); break;
    case 8: convert<int32_t>(raw, count, swap, out); break;
    case 16: convert<float>(raw, count, swap, out); break;
    case 64: convert<double>(raw, count, swap, out); break;
  }
}

}  // namespace

NiftiVolume read_nifti(const std::string& path) {
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file(gzopen(path.c_str(), "rb"), gzclose);
  if (!file) throw SourceError(path + ": missing or unreadable NIfTI file");
  unsigned char header[348];
  if (gzread(file.get(), header, sizeof header) != static_cast<int>(sizeof header))
    throw SourceError(path + ": truncated NIfTI header");
  const bool swap = field<int32_t>(header, 0, false) != 348;
  if (field<int32_t>(header, 0, swap) != 348) throw SourceError(path + ": not NIfTI-1 (sizeof_hdr is not 348)");
  if (std::memcmp(header + 344, "ni1", 4) == 0)
    throw SourceError(path + ": a NIfTI-1 header whose voxels are in a separate .img file (magic \"ni1\"); "
                      "convert the .hdr/.img pair to a single .nii or .nii.gz");
  if (std::memcmp(header + 344, "n+1", 4) != 0) throw SourceError(path + ": bad NIfTI-1 magic (expected \"n+1\")");
  int16_t dim[8];
  for (int i = 0; i < 8; ++i) dim[i] = field<int16_t>(header, 40 + 2 * i, swap);
  if (dim[0] < 2 || dim[0] > 7) throw SourceError(path + ": dim[0] = " + std::to_string(dim[0]) + " is invalid");
  for (int i = 4; i <= dim[0]; ++i)
    if (dim[i] > 1) throw SourceError(path + ": more than one volume (dim[" + std::to_string(i) + "] > 1)");
  NiftiVolume volume;
  volume.nx = dim[1];
  volume.ny = dim[2];
  volume.nz = dim[0] >= 3 ? dim[3] : 1;
  if (volume.nx < 1 || volume.ny < 1 || volume.nz < 1) throw SourceError(path + ": empty volume");
  const int16_t datatype = field<int16_t>(header, 70, swap);
  const float vox_offset = field<float>(header, 108, swap);
  const float slope = field<float>(header, 112, swap), intercept = field<float>(header, 116, swap);
  size_t bytes_per_voxel = 0;
  switch (datatype) {
    case 2: case 256: bytes_per_voxel = 1; break;  // uint8, int8
    case 4: case 512: bytes_per_voxel = 2; break;  // int16, uint16
    case 8: case 16: bytes_per_voxel = 4; break;   // int32, float32
    case 64: bytes_per_voxel = 8; break;           // float64
    default: throw SourceError(path + ": unsupported NIfTI datatype " + std::to_string(datatype));
  }
  // Skip to the data (extensions may lie between the header and vox_offset).
  const auto skip = static_cast<long>(vox_offset) - static_cast<long>(sizeof header);
  if (skip < 0 || gzseek(file.get(), skip, SEEK_CUR) < 0) throw SourceError(path + ": bad vox_offset");
  // Read and convert in blocks, so the raw bytes never take as much memory as the volume.
  const size_t count = static_cast<size_t>(volume.nx) * volume.ny * volume.nz;
  constexpr size_t kBlockVoxels = size_t{1} << 22;
  volume.voxels.resize(count);
  std::vector<unsigned char> raw(std::min(count, kBlockVoxels) * bytes_per_voxel);
  for (size_t first = 0; first < count;) {
    const size_t voxels = std::min(count - first, kBlockVoxels), bytes = voxels * bytes_per_voxel;
    for (size_t done = 0; done < bytes;) {
      const int got = gzread(file.get(), raw.data() + done, static_cast<unsigned>(bytes - done));
      if (got <= 0)
        throw SourceError(path + ": truncated or damaged voxel data (" +
                          std::to_string(first * bytes_per_voxel + done) + " of " +
                          std::to_string(count * bytes_per_voxel) + " bytes)");
      done += static_cast<size_t>(got);
    }
    convert_voxels(datatype, raw.data(), voxels, swap, volume.voxels.data() + first);
    first += voxels;
  }
  // As nifti1_io reads it (nibabel too, for the slope): a zero or non-finite slope means
  // "no scaling" (nibabel writes NaN when there is none); a non-finite intercept counts as 0.
  const float offset = std::isfinite(intercept) ? intercept : 0.f;
  if (std::isfinite(slope) && slope != 0.f && !(slope == 1.f && offset == 0.f))
    for (auto& v : volume.voxels) v = v * slope + offset;
  return volume;
}

}  // namespace sparser::prep
