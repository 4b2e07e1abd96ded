#include "model/fixture_parity.h"

#include <torch/torch.h>

#include <filesystem>
#include <functional>

#include "checkpoint/state_dict.h"
#include "config/model_section.h"
#include "io/hdf5_file.h"
#include "model/resize_longest_side.h"
#include "model/sam.h"

namespace sparser::model {

namespace {

torch::Tensor read_tensor(const io::Hdf5File& file, const std::string& name, torch::ScalarType type) {
  std::vector<int64_t> shape;
  if (type == torch::kLong) {
    auto data = file.read<int64_t>(name, &shape);
    return torch::tensor(data, torch::kLong).reshape(shape);
  }
  auto data = file.read<float>(name, &shape);
  return torch::tensor(data, torch::kFloat).reshape(shape);
}

double max_abs_error(const torch::Tensor& ours, const torch::Tensor& reference, const std::string& name) {
  if (ours.sizes() != reference.sizes()) {
    std::ostringstream msg;
    msg << name << ": shape " << ours.sizes() << " differs from the reference " << reference.sizes();
    throw std::runtime_error(msg.str());
  }
  if (ours.numel() == 0) return 0.0;
  return (ours.to(torch::kDouble) - reference.to(torch::kDouble)).abs().max().item<double>();
}

// One prompt set of the fixture: its inputs through the prompt encoder and mask decoder.
void compare_case(Sam& sam, const io::Hdf5File& cases, const std::string& group, const torch::Tensor& embeddings,
                  const torch::Tensor& dense_pe, const ImageSize& input_hw, const ImageSize& original_hw,
                  const std::function<void(const std::string&, const torch::Tensor&)>& compare) {
  auto optional_input = [&](const std::string& field, torch::ScalarType type) -> std::optional<torch::Tensor> {
    if (!cases.exists(group + "/" + field)) return std::nullopt;
    return read_tensor(cases, group + "/" + field, type);
  };
  Prompts prompts{optional_input("point_coords", torch::kFloat), optional_input("point_labels", torch::kLong),
                  optional_input("boxes", torch::kFloat), optional_input("mask_inputs", torch::kFloat)};
  const bool multimask = cases.read_int_attribute(group, "multimask_output") != 0;

  const auto prompt_embeddings = sam->prompt_encoder(prompts);
  compare(group + "/sparse_embeddings", prompt_embeddings.sparse);
  compare(group + "/dense_embeddings", prompt_embeddings.dense);
  const auto prediction =
      sam->mask_decoder(embeddings, dense_pe, prompt_embeddings.sparse, prompt_embeddings.dense, multimask);
  compare(group + "/low_res_logits", prediction.low_res_logits);
  compare(group + "/iou_predictions", prediction.iou_predictions);
  compare(group + "/mask_logits", sam->postprocess_masks(prediction.low_res_logits, input_hw, original_hw));
}

}  // namespace

std::vector<ParityResult> run_fixture_parity(const std::string& fixture_dir) {
  namespace fs = std::filesystem;
  const auto dir = fs::path(fixture_dir);
  const auto config = config::load_model_section((dir / "config.toml").string());
  Sam sam(config.sam);
  checkpoint::load_state_dict(*sam, checkpoint::read_state_dict((dir / "weights.pth").string()),
                              /*strict=*/true, (dir / "weights.pth").string());
  sam->eval();
  torch::NoGradGuard no_grad;

  const io::Hdf5File cases((dir / "cases.h5").string(), io::Hdf5File::Mode::Read);
  std::vector<ParityResult> results;
  auto compare = [&](const std::string& name, const torch::Tensor& ours) {
    results.push_back({name, max_abs_error(ours, read_tensor(cases, name, torch::kFloat), name)});
  };

  // The pre-processing: the original image resized to the model size, normalised and
  // padded. The fixtures resize with the official apply_image_torch (float bilinear,
  // antialiased); SamPredictor's apply_image (PIL, 8-bit), which sparser's pipeline uses,
  // rounds to whole grey levels and is tested against PIL itself.
  std::vector<int64_t> image_shape;
  auto image_bytes = cases.read<uint8_t>("image", &image_shape);
  if (image_shape.size() != 3 || image_shape[2] != 3)
    throw std::runtime_error((dir / "cases.h5").string() + ": image: expected H×W×3 uint8");
  const auto [resized_h, resized_w] =
      ResizeLongestSide(config.sam.image_size).output_size(image_shape[0], image_shape[1]);
  const auto image = torch::tensor(image_bytes).reshape(image_shape).permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat);
  const auto resized = torch::nn::functional::interpolate(image, torch::nn::functional::InterpolateFuncOptions()
                                                                     .size(std::vector<int64_t>{resized_h, resized_w})
                                                                     .mode(torch::kBilinear)
                                                                     .align_corners(false)
                                                                     .antialias(true));
  compare("input", sam->preprocess(resized));

  const auto input = read_tensor(cases, "input", torch::kFloat);
  const auto input_size = read_tensor(cases, "input_size", torch::kLong);
  const auto original_size = read_tensor(cases, "original_size", torch::kLong);
  const ImageSize input_hw{input_size[0].item<int64_t>(), input_size[1].item<int64_t>()};
  const ImageSize original_hw{original_size[0].item<int64_t>(), original_size[1].item<int64_t>()};

  const auto trunk = sam->image_encoder->forward_trunk(input);
  compare("encoder_trunk", trunk);
  const auto embeddings = sam->image_encoder->forward_neck(trunk);
  compare("image_embeddings", embeddings);
  const auto dense_pe = sam->prompt_encoder->get_dense_pe();
  compare("dense_pe", dense_pe);

  for (const auto& name : cases.members("cases")) {
    const std::string group = "cases/" + name;
    // A malformed case (labels without coordinates, say) is named, without LibTorch's backtrace.
    try {
      compare_case(sam, cases, group, embeddings, dense_pe, input_hw, original_hw, compare);
    } catch (const c10::Error& e) {
      throw std::runtime_error((dir / "cases.h5").string() + ": " + group + ": " + e.what_without_backtrace());
    }
  }
  return results;
}

}  // namespace sparser::model
