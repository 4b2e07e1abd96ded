// synthetic: a small generated dataset for trying sparser out and for its tests —
// coloured ellipses and rectangles (the instances, classes 1 = ellipse, 2 = rectangle)
// on a textured background, reproducible from --seed.
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "subcommands.h"
#include "util/seeded_rng.h"

namespace sparser::prep {

namespace {

std::vector<SourceImage> generate_image(const std::string& split, int64_t index, int size, int64_t max_instances,
                                        uint64_t seed) {
  util::SeededRng rng({seed, split == "train" ? 0u : 1u, static_cast<uint64_t>(index)});
  auto draw = [&](int lo, int hi) { return lo + static_cast<int>(rng.below(static_cast<uint64_t>(hi - lo + 1))); };
  const int height = size, width = draw(size * 3 / 4, size);
  cv::Mat image(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      image.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uint8_t>(60 + (x * 7 + y * 3) % 40 + rng.below(20)),
                                            static_cast<uint8_t>(70 + rng.below(30)),
                                            static_cast<uint8_t>(80 + (y * 5) % 30));
  SourceImage out;
  const int64_t count = 1 + static_cast<int64_t>(rng.below(static_cast<uint64_t>(max_instances)));
  for (int64_t k = 0; k < count; ++k) {
    cv::Mat mask = cv::Mat::zeros(height, width, CV_8U);
    const int32_t cls = 1 + static_cast<int32_t>(rng.below(2));
    const cv::Point centre(draw(width / 5, width * 4 / 5), draw(height / 5, height * 4 / 5));
    const cv::Size half(draw(size / 12, size / 5), draw(size / 12, size / 5));
    if (cls == 1) cv::ellipse(mask, centre, half, draw(0, 180), 0, 360, cv::Scalar(1), cv::FILLED);
    else cv::rectangle(mask, cv::Rect(centre - cv::Point(half.width, half.height), half * 2), cv::Scalar(1), cv::FILLED);
    const cv::Vec3b colour(static_cast<uint8_t>(draw(150, 255)), static_cast<uint8_t>(draw(0, 120)),
                           static_cast<uint8_t>(draw(100, 255)));
    image.setTo(colour, mask);
    // Later shapes cover earlier ones: keep each instance's mask to its visible part.
    for (auto& earlier : out.masks) earlier.mask.setTo(0, mask);
    out.masks.push_back({mask, cls});
  }
  cv::Mat bgr;
  cv::cvtColor(image, bgr, cv::COLOR_RGB2BGR);
  cv::imencode(".png", bgr, out.encoded);
  out.height = height;
  out.width = width;
  out.file_name = split + "/" + std::to_string(index) + ".png";
  out.source_id = index;
  return {std::move(out)};
}

}  // namespace

Subcommand synthetic_subcommand() {
  return {"synthetic", "generated shapes (no download) for trying sparser out and for tests",
          [](po::options_description& o) {
            o.add_options()("train-images", po::value<int64_t>()->default_value(16), "images in the train split")(
                "val-images", po::value<int64_t>()->default_value(8), "images in the val split (0: no val split)")(
                "image-size", po::value<int>()->default_value(96), "image height (width: 3/4 to 1 of it)")(
                "max-instances", po::value<int64_t>()->default_value(3), "instances per image: 1 to this");
          },
          [](const po::variables_map& vm, const CommonOptions& common) {
            Plan plan{"synthetic", {"train", "val"}, "{\"1\": \"ellipse\", \"2\": \"rectangle\"}", {}};
            const int size = vm["image-size"].as<int>();
            const auto max_instances = vm["max-instances"].as<int64_t>();
            if (size < 16) throw SourceError("--image-size must be at least 16");
            if (max_instances < 1) throw SourceError("--max-instances must be at least 1");
            if (vm["val-images"].as<int64_t>() == 0) plan.splits = {"train"};
            for (const std::string split : {"train", "val"}) {
              const auto n = vm[split + "-images"].as<int64_t>();
              for (int64_t i = 0; i < n; ++i)
                plan.jobs.push_back({split, "synthetic:" + split + "/" + std::to_string(i),
                                     [split, i, size, max_instances, seed = common.seed] {
                                       return generate_image(split, i, size, max_instances, seed);
                                     }});
            }
            return plan;
          }};
}

}  // namespace sparser::prep
