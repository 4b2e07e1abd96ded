#pragma once
// Prompted prediction on one image, as the official SamPredictor: the image is
// embedded once, then any number of prompt sets are decoded against it.
#include <opencv2/core.hpp>
#include <torch/torch.h>

#include <array>
#include <vector>

#include "model/resize_longest_side.h"
#include "model/sam.h"

namespace sparser::model {

struct PointPrompt {
  float x, y;  // original image pixels
  int64_t label;  // 1 foreground, 0 background
};

struct Prediction {
  torch::Tensor masks;            // B×M×H×W bool at the original size
  torch::Tensor mask_logits;      // B×M×H×W
  torch::Tensor iou_predictions;  // B×M
};

class Predictor {
 public:
  explicit Predictor(Sam sam);
  // RGB uint8 image of any size.
  void set_image(const cv::Mat& rgb);
  // One prompt set per box (each with all `points`), or one set of only `points`.
  // Coordinates are in original image pixels.
  Prediction predict(const std::vector<std::array<float, 4>>& boxes, const std::vector<PointPrompt>& points,
                     bool multimask_output);

 private:
  Sam sam_;
  ResizeLongestSide transform_;
  torch::Tensor embeddings_;
  ImageSize original_size_{0, 0}, input_size_{0, 0};
};

}  // namespace sparser::model
