// abdomenct: AbdomenCT-1K style CT volumes <images>/Case_XXXXX_0000.nii.gz with label
// volumes <labels>/Case_XXXXX.nii.gz (1 liver, 2 kidney, 3 spleen, 4 pancreas). Axial
// slices with at least one organ become images: CT window level 40 / width 400 (MedSAM:
// HU -160..240 → 0..255), replicated to 3 channels, PNG-encoded; one instance per organ
// per slice. Patients are split train/val by a seeded shuffle (default 80/20), so no
// patient is in both. Slices keep the voxel array's orientation (rows = y, columns = x).
#include <algorithm>
#include <filesystem>

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
    for (int y = 0; y < ct.ny; ++y)
      for (int x = 0; x < ct.nx; ++x) organs.at<uint8_t>(y, x) = static_cast<uint8_t>(std::lround(label.at(x, y, z)));
    if (cv::countNonZero(organs) == 0) continue;
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
    slice.meta_json = "{\"patient\": \"" + patient + "\", \"slice\": " + std::to_string(z) + "}";
    double max_label = 0;
    cv::minMaxLoc(organs, nullptr, &max_label);
    for (int organ = 1; organ <= static_cast<int>(max_label); ++organ) slice.masks.push_back({organs == organ, organ});
    slices.push_back(std::move(slice));
  }
  return slices;
}

// "Case_00001_0000.nii.gz" → "Case_00001".
std::string patient_of(const std::string& file_name) {
  std::string stem = file_name.substr(0, file_name.find('.'));
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
            const auto volumes = list_files(vm["images"].as<std::string>(), {".gz", ".nii"});
            const auto in_train = seeded_split(volumes.size(), vm["train-fraction"].as<double>(), common.seed);
            Plan plan{"abdomenct", {"train", "val"}, R"({"1": "liver", "2": "kidney", "3": "spleen", "4": "pancreas"})",
                      {}};
            for (size_t i = 0; i < volumes.size(); ++i) {
              const std::string image_path = volumes[i];
              const std::string name = fs::path(image_path).filename().string();
              const std::string patient = patient_of(name);
              const std::string extension = name.substr(name.find('.'));
              const std::string label_path = (fs::path(vm["labels"].as<std::string>()) / (patient + extension)).string();
              plan.jobs.push_back({in_train[i] ? "train" : "val", image_path, [image_path, label_path, patient] {
                                     return load_ct_case(image_path, label_path, patient);
                                   }});
            }
            return plan;
          }};
}

}  // namespace sparser::prep
