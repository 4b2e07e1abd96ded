// sparser_predict: segments an image from box and/or point prompts with a SAM
// checkpoint (official or exported), writing mask PNGs and an overlay.
#include <boost/program_options.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "checkpoint/state_dict.h"
#include "config/method_section.h"
#include "config/model_section.h"
#include "config/toml_section.h"
#include "data/eight_bit_image.h"
#include "methods/trainable.h"
#include "model/predictor.h"
#include "train/model_setup.h"
#include "util/atomic_file.h"

namespace po = boost::program_options;
using namespace sparser;

namespace {

std::vector<float> parse_numbers(const std::string& text, size_t count, const std::string& what) {
  std::vector<float> values;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      values.push_back(std::stof(item, &used));
      // stof also reads "nan" and "inf", which would come out as a meaningless mask.
      if (used != item.size() || !std::isfinite(values.back())) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw std::invalid_argument(what + " '" + text + "': '" + item + "' is not a finite number");
    }
  }
  if (values.size() != count)
    throw std::invalid_argument(what + " '" + text + "': expected " + std::to_string(count) + " comma-separated numbers");
  return values;
}

// The model of --config (`top`, read from `config_path`): `section`, and where the tensors a
// run trained are given (--delta, or the trained.pth beside a run directory's config.toml),
// its [method] with them; --delta none: `section` alone. `other_checkpoint`: --checkpoint
// names another file than the config's. That may be the run's base SAM at another path or
// sparser_export's model, which holds the trained tensors already, and the two cannot be
// told apart: with trained.pth beside the config, --delta must then say which.
model::Sam configured_model(const std::string& config_path, const config::TomlSection& top,
                            const config::ModelSection& section, std::string delta_path, bool other_checkpoint) {
  const auto method = config::parse_method_section(top.section("method"));
  const bool trains = top.has("method") && method.name != methods::MethodName::ZeroShot;
  const auto beside = std::filesystem::path(config_path).parent_path() / "trained.pth";
  if (delta_path.empty() && trains && std::filesystem::exists(beside)) {
    if (other_checkpoint)
      throw std::invalid_argument("--checkpoint " + section.checkpoint + " in place of the checkpoint of " +
                                  config_path + ", whose run's trained tensors lie beside it: pass --delta " +
                                  beside.string() + " if it is the run's base SAM, --delta none if it is an " +
                                  "exported model (which holds them already)");
    delta_path = beside.string();
  }
  if (delta_path.empty() && trains)
    std::cerr << "sparser_predict: note: " << config_path << ": its [model] as it is; its [method] ("
              << methods::to_string(method.name) << ") trains nothing here without a run's trained tensors "
              << "(pass a run directory's config.toml, or --delta)\n";
  if (delta_path.empty() || delta_path == "none") return train::build_model(section).sam;
  auto setup = train::build_model(section, method);
  methods::load_delta(*setup.sam, checkpoint::read_state_dict(delta_path), delta_path);
  std::cout << "model: " << methods::to_string(method.name) << " with the trained tensors of " << delta_path << "\n";
  return setup.sam;
}

// Encoded first, then written whole or not at all: a mask cut short by a full disk is no mask.
void write_png(const std::filesystem::path& path, const cv::Mat& image) {
  std::vector<uchar> png;
  if (!cv::imencode(".png", image, png)) throw std::runtime_error(path.string() + ": cannot encode image");
  util::write_file_atomically(path.string(), std::string(png.begin(), png.end()));
}

cv::Mat overlay(const cv::Mat& rgb, const torch::Tensor& masks) {
  static const std::vector<cv::Vec3b> palette{{30, 144, 255}, {255, 99, 71}, {50, 205, 50}, {255, 215, 0},
                                              {186, 85, 211}, {0, 206, 209}};
  cv::Mat out = rgb.clone();
  for (int64_t i = 0; i < masks.size(0); ++i) {
    auto mask = masks[i].contiguous().to(torch::kUInt8);
    const cv::Mat m(rgb.rows, rgb.cols, CV_8UC1, mask.data_ptr<uint8_t>());
    const auto color = palette[static_cast<size_t>(i) % palette.size()];
    for (int y = 0; y < out.rows; ++y)
      for (int x = 0; x < out.cols; ++x)
        if (m.at<uint8_t>(y, x)) out.at<cv::Vec3b>(y, x) = out.at<cv::Vec3b>(y, x) * 0.45 + color * 0.55;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  po::options_description options(
      "Usage: sparser_predict --image FILE (--config FILE | --preset NAME --checkpoint FILE)\n"
      "                       [--box x0,y0,x1,y1]... [--point x,y,label]... [--multimask] [--out DIR]\n\n"
      "Coordinates are pixels of the original image. Each --box is one prompt set (with all\n"
      "--point prompts added to it); without boxes the points form one prompt set. Writes\n"
      "DIR/mask_<set>[_<k>].png (0/255) and DIR/overlay.png, and prints the IoU predictions.\n"
      "A run directory's config.toml gives the fine-tuned model: its base checkpoint, its\n"
      "[method] and the trained.pth beside it (--delta names other trained tensors, e.g. a\n"
      "checkpoint's). sparser_export writes such a model as one official state dict.\n\nOptions");
  std::string image_path, config_path, preset, checkpoint, checkpoint_key, delta_path, out_dir = ".";
  std::vector<std::string> box_args, point_args;
  options.add_options()("help,h", "show this help")("image", po::value<std::string>(&image_path),
                                                     "PNG, JPEG or TIFF image")(
      "config", po::value<std::string>(&config_path),
      "a run's config.toml (the fine-tuned model), or a config whose [model] gives SAM and its checkpoint")(
      "delta", po::value<std::string>(&delta_path),
      "with --config: the tensors a run trained (default: the trained.pth beside a run's config.toml; "
      "none: without them, e.g. for --checkpoint of an exported model)")(
      "preset", po::value<std::string>(&preset), "vit_b, vit_l or vit_h (with --checkpoint)")(
      "checkpoint", po::value<std::string>(&checkpoint),
      "official or exported .pth, in place of the config's (with a run's config.toml, --delta says whether its "
      "trained.pth applies)")(
      "checkpoint-key", po::value<std::string>(&checkpoint_key),
      "key of the state dict in a checkpoint that nests it (e.g. model); default: found automatically")(
      "box", po::value<std::vector<std::string>>(&box_args), "x0,y0,x1,y1 (repeatable)")(
      "point", po::value<std::vector<std::string>>(&point_args), "x,y,label with label 1 = fg, 0 = bg (repeatable)")(
      "multimask", "return the 3 multi-mask outputs instead of the single one")(
      "out", po::value<std::string>(&out_dir)->default_value("."), "output directory");
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, options), vm);
    po::notify(vm);
    if (vm.count("help")) {
      std::cout << options << "\n";
      return 0;
    }
    if (image_path.empty()) throw std::invalid_argument("--image is required (see --help)");
    if (config_path.empty() == preset.empty()) throw std::invalid_argument("give exactly one of --config and --preset");

    if (!delta_path.empty() && config_path.empty())
      throw std::invalid_argument("--delta needs --config: the run's config says which method trained it");
    const auto root = config_path.empty() ? toml::table() : config::parse_toml_file(config_path);
    const config::TomlSection top(&root, config_path, "");
    config::ModelSection section;
    if (!config_path.empty()) section = config::parse_model_section(top.section("model"));
    else section.sam = model::sam_preset(preset);
    std::error_code unknown;  // a path that is not there is another file
    const bool other_checkpoint =
        !checkpoint.empty() && !std::filesystem::equivalent(checkpoint, section.checkpoint, unknown);
    if (!checkpoint.empty()) section.checkpoint = checkpoint;
    if (!checkpoint_key.empty()) section.checkpoint_key = checkpoint_key;
    if (section.checkpoint.empty()) throw std::invalid_argument("no checkpoint: pass --checkpoint");

    std::vector<std::array<float, 4>> boxes;
    for (const auto& b : box_args) {
      const auto v = parse_numbers(b, 4, "--box");
      if (!(v[0] < v[2] && v[1] < v[3]))
        throw std::invalid_argument("--box '" + b + "': expected x0,y0,x1,y1 with x0 < x1 and y0 < y1");
      boxes.push_back({v[0], v[1], v[2], v[3]});
    }
    std::vector<model::PointPrompt> points;
    for (const auto& p : point_args) {
      const auto v = parse_numbers(p, 3, "--point");
      if (v[2] != 0.f && v[2] != 1.f) throw std::invalid_argument("--point '" + p + "': label must be 0 or 1");
      points.push_back({v[0], v[1], static_cast<int64_t>(v[2])});
    }
    if (boxes.empty() && points.empty()) throw std::invalid_argument("give at least one --box or --point");

    // As sparser_prep stores images: more than 8 bits rescaled (data/eight_bit_image.h).
    const cv::Mat bgr = data::to_eight_bit(cv::imread(image_path, cv::IMREAD_COLOR | cv::IMREAD_ANYDEPTH));
    if (bgr.empty()) throw std::runtime_error(image_path + ": cannot read image (missing or not PNG/JPEG/TIFF)");
    cv::Mat rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);

    model::Predictor predictor(config_path.empty() ? train::build_model(section).sam
                                                   : configured_model(config_path, top, section, delta_path,
                                                                      other_checkpoint));
    try {
      predictor.set_image(rgb);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(image_path + ": " + e.what());
    }
    const auto prediction = predictor.predict(boxes, points, vm.count("multimask") > 0);

    std::filesystem::create_directories(out_dir);
    const auto sets = prediction.masks.size(0), per_set = prediction.masks.size(1);
    for (int64_t s = 0; s < sets; ++s)
      for (int64_t k = 0; k < per_set; ++k) {
        auto mask = (prediction.masks[s][k].to(torch::kUInt8) * 255).contiguous();
        const cv::Mat m(rgb.rows, rgb.cols, CV_8UC1, mask.data_ptr<uint8_t>());
        const auto name = "mask_" + std::to_string(s) + (per_set > 1 ? "_" + std::to_string(k) : "") + ".png";
        write_png(std::filesystem::path(out_dir) / name, m);
        std::cout << "prompt " << s << " mask " << k << " iou_prediction " << prediction.iou_predictions[s][k].item<float>()
                  << " -> " << name << "\n";
      }
    cv::Mat shown;
    // Overlay the best-scored mask of each prompt set.
    const auto best = prediction.iou_predictions.argmax(1);
    std::vector<torch::Tensor> chosen;
    for (int64_t s = 0; s < sets; ++s) chosen.push_back(prediction.masks[s][best[s].item<int64_t>()]);
    cv::cvtColor(overlay(rgb, torch::stack(chosen)), shown, cv::COLOR_RGB2BGR);
    write_png(std::filesystem::path(out_dir) / "overlay.png", shown);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "sparser_predict: " << e.what() << "\n";
    return 2;
  }
}
