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
      for (int x = 0; x < ct.nx; ++x) {
        const float hu = ct.at(x, y, z);
        if (!std::isfinite(hu))
          throw SourceError(image_path + ": voxel (" + std::to_string(x) + ", " + std::to_string(y) + ", " +
                            std::to_string(z) + ") holds " + std::to_string(hu) + ", not a CT value");
        grey.at<uint8_t>(y, x) =
            static_cast<uint8_t>(std::lround(std::clamp((hu - low) / kWindowWidth, 0.f, 1.f) * 255.f));
      }
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
            o.add_options()("images", po::value<std::vector<std::string>>()->required()->composing(),
                            "a directory of CT volumes (Case_XXXXX_0000.nii[.gz]); repeat it for the release's "
                            "AbdomenCT-1K-ImagePart1, 2 and 3")(
                "labels", po::value<std::string>()->required(), "label volumes (Case_XXXXX.nii[.gz])")(
                "train-fraction", po::value<double>()->default_value(0.8, "0.8"), "share of patients in train");
          },
          [](const po::variables_map& vm, const CommonOptions& common) {
            namespace fs = std::filesystem;
            Plan plan{"abdomenct", {"train", "val"}, R"({"1": "liver", "2": "kidney", "3": "spleen", "4": "pancreas"})",
                      {}};
            // Only volumes with a label take part in the split: the release has unlabelled cases.
            struct Case {
              std::string patient, image_path, label_path;
            };
            std::vector<Case> cases;
            const auto& image_directories = vm["images"].as<std::vector<std::string>>();
            const auto labels = fs::path(vm["labels"].as<std::string>());
            if (!fs::is_directory(labels)) throw SourceError(labels.string() + ": missing directory (--labels)");
            for (const auto& directory : image_directories)
              for (const auto& image_path : list_files(directory, {".gz", ".nii"})) {
                const std::string name = fs::path(image_path).filename().string();
                if (nifti_extension(name).empty()) continue;
                const std::string patient = patient_of(name);
                std::string label_path;
                for (const std::string extension : {".nii.gz", ".nii"})
                  if (fs::exists(labels / (patient + extension)))
                    label_path = (labels / (patient + extension)).string();
                if (label_path.empty())
                  plan.ignored_files.push_back(image_path + ": no label volume " + (labels / patient).string() +
                                               ".nii[.gz]");
                else
                  cases.push_back({patient, image_path, label_path});
              }
            if (cases.empty()) {
              std::string directories;
              for (const auto& d : image_directories) directories += (directories.empty() ? "" : ", ") + d;
              throw SourceError("no CT volume with a label volume in " + directories + " (labels: " +
                                vm["labels"].as<std::string>() + "); the release keeps its volumes in "
                                "AbdomenCT-1K-ImagePart1, 2 and 3: give each with --images");
            }
            // By patient, so the split does not depend on the order of --images.
            std::sort(cases.begin(), cases.end(), [](const Case& a, const Case& b) { return a.patient < b.patient; });
            for (size_t i = 1; i < cases.size(); ++i)
              if (cases[i].patient == cases[i - 1].patient)
                throw SourceError(cases[i].image_path + ": patient " + cases[i].patient + " also has " +
                                  cases[i - 1].image_path);
            const auto in_train =
                seeded_split(cases.size(), vm["train-fraction"].as<double>(), common.seed, "--train-fraction");
            for (size_t i = 0; i < cases.size(); ++i)
              plan.jobs.push_back({in_train[i] ? "train" : "val", cases[i].image_path, [c = cases[i]] {
                                     return load_ct_case(c.image_path, c.label_path, c.patient);
                                   }});
            return plan;
          }};
}

}  // namespace sparser::prep
