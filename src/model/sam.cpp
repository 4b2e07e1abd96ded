#include "model/sam.h"

namespace F = torch::nn::functional;

namespace sparser::model {

SamImpl::SamImpl(const SamConfig& config) : config_(config) {
  config_.validate();
  image_encoder = register_module("image_encoder", ImageEncoderViT(config_));
  prompt_encoder = register_module("prompt_encoder", PromptEncoder(config_));
  mask_decoder = register_module("mask_decoder", MaskDecoder(config_));
  pixel_mean_ = torch::tensor({123.675f, 116.28f, 103.53f}).view({-1, 1, 1});
  pixel_std_ = torch::tensor({58.395f, 57.12f, 57.375f}).view({-1, 1, 1});
}

torch::Tensor SamImpl::preprocess(const torch::Tensor& images) const {
  const auto h = images.size(-2), w = images.size(-1), S = config_.image_size;
  TORCH_CHECK(h <= S && w <= S, "preprocess: image of ", h, "x", w, " exceeds the model size ", S,
              " (resize the longest side first)");
  auto x = (images - pixel_mean_.to(images.device())) / pixel_std_.to(images.device());
  return F::pad(x, F::PadFuncOptions({0, S - w, 0, S - h}));
}

MaskPrediction SamImpl::decode(const torch::Tensor& image_embeddings, const Prompts& prompts, bool multimask_output) {
  auto emb = prompt_encoder(prompts);
  return mask_decoder(image_embeddings, prompt_encoder->get_dense_pe(), emb.sparse, emb.dense, multimask_output);
}

torch::Tensor SamImpl::postprocess_masks(const torch::Tensor& low_res_logits, ImageSize input_size,
                                         ImageSize original_size) const {
  const auto S = config_.image_size;
  auto bilinear = [](const torch::Tensor& x, int64_t h, int64_t w) {
    return F::interpolate(x, F::InterpolateFuncOptions()
                                 .size(std::vector<int64_t>{h, w})
                                 .mode(torch::kBilinear)
                                 .align_corners(false));
  };
  auto masks = bilinear(low_res_logits, S, S);
  masks = masks.slice(2, 0, input_size.first).slice(3, 0, input_size.second);
  return bilinear(masks, original_size.first, original_size.second);
}

}  // namespace sparser::model
