// abdomenct: AbdomenCT-1K style CT volumes <images>/Case_XXXXX_0000.nii.gz with label
// volumes <labels>/Case_XXXXX.nii.gz (1 liver, 2 kidney, 3 spleen, 4 pancreas). Axial
// slices with at least one organ become images: CT window level 40 / width 400 (MedSAM:
// HU -160..240 → 0..255), replicated to 3 channels, PNG-encoded; one instance per organ
// per slice. Patients are split train/val by a seeded shuffle (default 80/20), so no
// patient is in both. Slices keep the voxel array's orientation (rows = y, columns = x).
#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include <opencv2/imgcodecs.hpp>

#include "nifti.h"
#include "subcommands.h"

namespace sparser::prep {

namespace {

constexpr float kWindowLevel = 40.f, kWindowWidth = 400.f;

std::vector<SourceImage> load_ct_case(const std::string& image_path, const std::string& label_path,
                                      const std::string& patient) {
  const NiftiVolume ct = read_nifti(image_path);
  const NiftiVolume label = read_nifti(label_path);
  if (ct.nx != label.nx || ct.ny != label.ny || ct.nz != label.nz)
    throw SourceError(label_path + ": label volume shape differs from " + image_path);
  std::vector<SourceImage> slices;
  for (int z = 0; z < ct.nz; ++z) {
    cv::Mat organs(ct.ny, ct.nx, CV_8U);
    std::array<int64_t, 256> pixels_of{};  // per label value, on this slice
    for (int y = 0; y < ct.ny; ++y)
      for (int x = 0; x < ct.nx; ++x) {
        const float value = label.at(x, y, z);
        if (!(value >= 0 && value <= 255) || value != std::round(value))
          throw SourceError(label_path + ": voxel (" + std::to_string(x) + ", " + std::to_string(y) + ", " +
                            std::to_string(z) + ") holds " + std::to_string(value) +
                            ", not an organ label 0..255");
        organs.at<uint8_t>(y, x) = static_cast<uint8_t>(value);
        ++pixels_of[static_cast<size_t>(value)];
      }
    if (pixels_of[0] == static_cast<int64_t>(organs.total())) continue;
    cv::Mat grey(ct.ny, ct.nx, CV_8U);
    const float low = kWindowLevel - kWindowWidth / 2;
    for (int y = 0; y < ct.ny; ++y)
      for (int x = 0; x < ct.nx; ++x)
        grey.at<uint8_t>(y, x) =
            static_cast<uint8_t>(std::lround(std::clamp((ct.at(x, y, z) - low) / kWindowWidth, 0.f, 1.f) * 255.f));
    cv::Mat rgb;
    cv::merge(std::vector<cv::Mat>{grey, grey, grey}, rgb);
    SourceImage slice;
    cv::imencode(".png", rgb, slice.encoded);
    slice.height = ct.ny;
    slice.width = ct.nx;
    slice.file_name = std::filesystem::path(image_path).filename().string() + "#z=" + std::to_string(z);
    slice.source_id = z;
    slice.meta_json = nlohmann::json{{"patient", patient}, {"slice", z}}.dump();
    for (int organ = 1; organ < 256; ++organ)  // only the organs on this slice
      if (pixels_of[organ] > 0) slice.masks.push_back({organs == organ, organ});
    slices.push_back(std::move(slice));
  }
  return slices;
}

// ".nii.gz" or ".nii" if `path` ends in one of them, else "".
std::string nifti_extension(const std::string& path) {
  for (const std::string extension : {".nii.gz", ".nii"})
    if (path.size() > extension.size() && path.compare(path.size() - extension.size(), extension.size(), extension) == 0)
      return extension;
  return "";
}

// "Case_00001_0000.nii.gz" → "Case_00001".
std::string patient_of(const std::string& file_name) {
  std::string stem = file_name.substr(0, file_name.size() - nifti_extension(file_name).size());
  if (stem.size() > 5 && stem.compare(stem.size() - 5, 5, "_0000") == 0) stem.resize(stem.size() - 5);
  return stem;
}

}  // namespace

Subcommand abdomenct_subcommand() {
  return {"abdomenct", "AbdomenCT-1K NIfTI volumes + labels → 2-D slices, seeded train/val split by patient",
          [](po::options_description& o) {
            o.add_options()("images", po::value<std::string>()->required(), "CT volumes (Case_XXXXX_0000.nii[.gz])")(
                "labels", po::value<std::string>()->required(), "label volumes (Case_XXXXX.nii[.gz])")(
                "train-fraction", po::value<double>()->default_value(0.8), "share of patients in train");
          },
          [](const po::variables_map& vm, const CommonOptions& common) {
            namespace fs = std::filesystem;
            auto volumes = list_files(vm["images"].as<std::string>(), {".gz", ".nii"});
            volumes.erase(std::remove_if(volumes.begin(), volumes.end(),
                                         [](const std::string& p) { return nifti_extension(p).empty(); }),
                          volumes.end());
            const auto in_train = seeded_split(volumes.size(), vm["train-fraction"].as<double>(), common.seed, "--train-fraction");
            Plan plan{"abdomenct", {"train", "val"}, R"({"1": "liver", "2": "kidney", "3": "spleen", "4": "pancreas"})",
                      {}};
            for (size_t i = 0; i < volumes.size(); ++i) {
              const std::string image_path = volumes[i];
              const std::string name = fs::path(image_path).filename().string();
              const std::string patient = patient_of(name);
              const std::string label_path =
                  (fs::path(vm["labels"].as<std::string>()) / (patient + nifti_extension(name))).string();
              plan.jobs.push_back({in_train[i] ? "train" : "val", image_path, [image_path, label_path, patient] {
                                     return load_ct_case(image_path, label_path, patient);
                                   }});
            }
            return plan;
          }};
}

}  // namespace sparser::prep
