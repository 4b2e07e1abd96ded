#pragma once
// The Segment Anything Model (official: sam.py): image encoder, prompt encoder and
// mask decoder, with the official pixel normalisation and mask post-processing.
#include <torch/torch.h>

#include <utility>

#include "model/image_encoder.h"
#include "model/mask_decoder.h"
#include "model/prompt_encoder.h"
#include "model/sam_config.h"

namespace sparser::model {

using ImageSize = std::pair<int64_t, int64_t>;  // (height, width)

class SamImpl : public torch::nn::Module {
 public:
  explicit SamImpl(const SamConfig& config);

  // B×3×h×w float RGB in [0, 255], already resized so the longest side is image_size:
  // normalised with the official pixel mean/std and zero-padded to image_size².
  torch::Tensor preprocess(const torch::Tensor& images) const;
  // Image embeddings of preprocessed images.
  torch::Tensor encode(const torch::Tensor& input) { return image_encoder(input); }
  // Masks and IoU predictions for one image embedding (1×D×h×w, or one per prompt set).
  MaskPrediction decode(const torch::Tensor& image_embeddings, const Prompts& prompts, bool multimask_output);
  // Low-resolution logits → logits at the original image size: upsample to image_size,
  // crop the padding (input_size = size after resize), upsample to original_size.
  torch::Tensor postprocess_masks(const torch::Tensor& low_res_logits, ImageSize input_size,
                                  ImageSize original_size) const;

  const SamConfig& config() const { return config_; }

  ImageEncoderViT image_encoder{nullptr};
  PromptEncoder prompt_encoder{nullptr};
  MaskDecoder mask_decoder{nullptr};

 private:
  SamConfig config_;
  // Not registered: the official model keeps them out of the state dict.
  torch::Tensor pixel_mean_, pixel_std_;
};
TORCH_MODULE(Sam);

}  // namespace sparser::model
