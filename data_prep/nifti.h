#pragma once
// A minimal NIfTI-1 reader (.nii and .nii.gz, read through zlib's gzread, which also
// reads uncompressed files): 3-D volumes of uint8, int8, int16, uint16, int32, float32
// or float64, either byte order, with scl_slope / scl_inter applied (a slope of 0 or NaN = none).
#include <string>
#include <vector>

namespace sparser::prep {

struct NiftiVolume {
  int nx = 0, ny = 0, nz = 0;
  std::vector<float> voxels;  // x fastest: voxels[x + nx * (y + ny * z)]
  float at(int x, int y, int z) const { return voxels[static_cast<size_t>(x) + static_cast<size_t>(nx) * (y + static_cast<size_t>(ny) * z)]; }
};

// Throws SourceError naming the file on a bad header, a header-only file ("ni1": voxels in
// a separate .img), an unsupported datatype, a volume with more than one time point, or
// truncated or damaged data. Memory: the float volume plus a 4 Mi-voxel read buffer.
NiftiVolume read_nifti(const std::string& path);

}  // namespace sparser::prep
