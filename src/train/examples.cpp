#include "train/examples.h"

#include "data/prefetcher.h"

namespace F = torch::nn::functional;

namespace sparser::train {

namespace {

torch::Tensor image_tensor(const cv::Mat& rgb) {
  cv::Mat image = rgb.isContinuous() ? rgb : rgb.clone();
  return torch::from_blob(image.data, {1, image.rows, image.cols, 3}, torch::kUInt8)
      .permute({0, 3, 1, 2})
      .to(torch::kFloat);
}

torch::Tensor mask_tensor(const cv::Mat& mask) {
  cv::Mat m = mask.isContinuous() ? mask : mask.clone();
  return torch::from_blob(m.data, {m.rows, m.cols}, torch::kUInt8).to(torch::kBool);
}

torch::Tensor boxes_tensor(const std::vector<std::array<float, 4>>& boxes) {
  std::vector<float> flat;
  for (const auto& b : boxes) flat.insert(flat.end(), b.begin(), b.end());
  return torch::tensor(flat).reshape({static_cast<int64_t>(boxes.size()), 4});
}

}  // namespace

TrainingExample to_training_example(const data::Sample& sample, const model::SamConfig& config) {
  TrainingExample ex;
  ex.index = sample.index;
  ex.image = image_tensor(sample.image);
  const auto S = config.image_size;
  const auto low_res = 4 * config.embedding_size();
  std::vector<std::array<float, 4>> boxes;
  std::vector<torch::Tensor> masks;
  for (const auto& instance : sample.instances) {
    boxes.push_back(instance.box);
    masks.push_back(mask_tensor(instance.mask));
  }
  ex.boxes = boxes_tensor(boxes);
  // Ground truth in the padded S×S model frame, area-averaged down to the decoder's
  // L×L output and thresholded at 1/2: the loss compares like with like.
  const auto h = sample.image.rows, w = sample.image.cols;
  auto full = torch::stack(masks).to(torch::kFloat).unsqueeze(1);
  full = F::pad(full, F::PadFuncOptions({0, S - w, 0, S - h}));
  auto low = F::interpolate(full, F::InterpolateFuncOptions().size(std::vector<int64_t>{low_res, low_res}).mode(torch::kArea));
  ex.low_res_targets = (low >= 0.5).to(torch::kFloat);
  return ex;
}

EvalExample to_eval_example(const data::Sample& sample, const model::SamConfig& config) {
  const model::ResizeLongestSide transform(config.image_size);
  EvalExample ex;
  ex.index = sample.index;
  ex.original_size = {sample.image.rows, sample.image.cols};
  const cv::Mat resized = data::model_frame_image(sample, config.image_size);
  ex.input_size = {resized.rows, resized.cols};
  ex.image = image_tensor(resized);
  std::vector<std::array<float, 4>> boxes;
  std::vector<torch::Tensor> masks;
  for (const auto& instance : sample.instances) {
    boxes.push_back(transform.apply_box(instance.box, sample.image.rows, sample.image.cols));
    masks.push_back(mask_tensor(instance.mask));
    ex.class_ids.push_back(instance.class_id);
  }
  ex.boxes = boxes_tensor(boxes);
  ex.masks = torch::stack(masks);
  return ex;
}

}  // namespace sparser::train
