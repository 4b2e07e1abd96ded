#include "model/predictor.h"

namespace sparser::model {

Predictor::Predictor(Sam sam) : sam_(std::move(sam)), transform_(sam_->config().image_size) { sam_->eval(); }

void Predictor::set_image(const cv::Mat& rgb) {
  TORCH_CHECK(rgb.type() == CV_8UC3, "predictor expects an 8-bit 3-channel RGB image");
  original_size_ = {rgb.rows, rgb.cols};
  cv::Mat resized = transform_.apply_image(rgb);
  if (!resized.isContinuous()) resized = resized.clone();
  input_size_ = {resized.rows, resized.cols};
  auto image = torch::from_blob(resized.data, {1, resized.rows, resized.cols, 3}, torch::kUInt8)
                   .permute({0, 3, 1, 2})
                   .to(torch::kFloat);
  torch::NoGradGuard no_grad;
  embeddings_ = sam_->encode(sam_->preprocess(image));
}

Prediction Predictor::predict(const std::vector<std::array<float, 4>>& boxes, const std::vector<PointPrompt>& points,
                              bool multimask_output) {
  TORCH_CHECK(embeddings_.defined(), "predictor: set_image first");
  TORCH_CHECK(!boxes.empty() || !points.empty(), "predictor: give at least one box or point");
  const auto [h, w] = original_size_;
  const int64_t sets = boxes.empty() ? 1 : static_cast<int64_t>(boxes.size());
  Prompts prompts;
  if (!points.empty()) {
    std::vector<float> coords;
    std::vector<int64_t> labels;
    for (int64_t s = 0; s < sets; ++s)
      for (const auto& p : points) {
        const auto xy = transform_.apply_coords({p.x, p.y}, h, w);
        coords.insert(coords.end(), xy.begin(), xy.end());
        labels.push_back(p.label);
      }
    const auto n = static_cast<int64_t>(points.size());
    prompts.point_coords = torch::tensor(coords).reshape({sets, n, 2});
    prompts.point_labels = torch::tensor(labels).reshape({sets, n});
  }
  if (!boxes.empty()) {
    std::vector<float> flat;
    for (const auto& b : boxes) {
      const auto t = transform_.apply_box(b, h, w);
      flat.insert(flat.end(), t.begin(), t.end());
    }
    prompts.boxes = torch::tensor(flat).reshape({sets, 4});
  }
  torch::NoGradGuard no_grad;
  const auto out = sam_->decode(embeddings_, prompts, multimask_output);
  const auto logits = sam_->postprocess_masks(out.low_res_logits, input_size_, original_size_);
  return {logits > 0, logits, out.iou_predictions};
}

}  // namespace sparser::model
