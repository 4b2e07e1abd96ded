#pragma once
// Mask decoder (official: mask_decoder.py): two-way transformer over output tokens
// and the image embedding, upscaling, hypernetwork MLPs and the IoU head.
#include <torch/torch.h>

#include "model/common.h"
#include "model/sam_config.h"
#include "model/transformer.h"

namespace sparser::model {

// num_layers Linear layers with ReLU between them.
class MLPImpl : public torch::nn::Module {
 public:
  MLPImpl(int64_t input_dim, int64_t hidden_dim, int64_t output_dim, int64_t num_layers);
  torch::Tensor forward(torch::Tensor x);
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(MLP);

struct MaskPrediction {
  torch::Tensor low_res_logits;   // B×M×4h×4w
  torch::Tensor iou_predictions;  // B×M
};

class MaskDecoderImpl : public torch::nn::Module {
 public:
  explicit MaskDecoderImpl(const SamConfig& config);
  // image_embeddings: N×C×h×w (N = 1 broadcasts over the B prompts, else N = B).
  // multimask_output selects the 3 multi-mask outputs, otherwise the single one.
  // When the B prompt sets share the image and the dense embedding (no mask prompts: the
  // prompt encoder's dense output is broadcast, stride 0), the image tokens stay one
  // batch until the first attention that mixes in the prompts, so the image-side
  // projections of the first layer run once rather than B times (same results).
  MaskPrediction forward(const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
                         const torch::Tensor& sparse_prompt_embeddings, const torch::Tensor& dense_prompt_embeddings,
                         bool multimask_output);
  // Masks and IoU predictions of the mask tokens first .. last − 1.
  MaskPrediction predict_masks(const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
                               const torch::Tensor& sparse_prompt_embeddings,
                               const torch::Tensor& dense_prompt_embeddings, int64_t first, int64_t last);

  TwoWayTransformer transformer{nullptr};
  torch::nn::Embedding iou_token{nullptr}, mask_tokens{nullptr};
  // Official layers, run channels-last: PatchConvTranspose2d, LayerNorm over channels
  // (= LayerNorm2d), GELU, PatchConvTranspose2d, GELU.
  torch::nn::Sequential output_upscaling{nullptr};
  torch::nn::ModuleList output_hypernetworks_mlps{nullptr};
  MLP iou_prediction_head{nullptr};
  int64_t num_mask_tokens;
};
TORCH_MODULE(MaskDecoder);

}  // namespace sparser::model
