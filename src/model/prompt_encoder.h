#pragma once
// Prompt encoder (official: prompt_encoder.py): points, boxes and dense masks to
// sparse and dense embeddings, with random-Fourier positional encoding.
#include <torch/torch.h>

#include <optional>

#include "model/common.h"
#include "model/sam_config.h"

namespace sparser::model {

// Positional encoding with random spatial frequencies (Tancik et al.).
class PositionEmbeddingRandomImpl : public torch::nn::Module {
 public:
  explicit PositionEmbeddingRandomImpl(int64_t num_pos_feats);
  // Dense encoding of an h×w grid: (2·num_pos_feats)×h×w.
  torch::Tensor forward(int64_t h, int64_t w);
  // Encodes B×N×2 (x, y) pixel coordinates of an image of size (H, W): B×N×2·num_pos_feats.
  torch::Tensor forward_with_coords(const torch::Tensor& coords, int64_t image_h, int64_t image_w);
  torch::Tensor positional_encoding_gaussian_matrix;

 private:
  torch::Tensor pe_encoding(const torch::Tensor& coords);
};
TORCH_MODULE(PositionEmbeddingRandom);

struct Prompts {
  std::optional<torch::Tensor> point_coords;  // B×N×2, input frame (x, y)
  std::optional<torch::Tensor> point_labels;  // B×N: 1 foreground, 0 background, -1 padding
  std::optional<torch::Tensor> boxes;         // B×4, input frame (x0, y0, x1, y1)
  std::optional<torch::Tensor> mask_inputs;   // B×1×4h×4w low-resolution mask logits
};

struct PromptEmbeddings {
  torch::Tensor sparse;  // B×T×D
  torch::Tensor dense;   // B×D×h×w
};

class PromptEncoderImpl : public torch::nn::Module {
 public:
  explicit PromptEncoderImpl(const SamConfig& config);
  PromptEmbeddings forward(const Prompts& prompts);
  // Positional encoding of the image-embedding grid: 1×D×h×w.
  torch::Tensor get_dense_pe();

  PositionEmbeddingRandom pe_layer{nullptr};
  torch::nn::ModuleList point_embeddings{nullptr};
  torch::nn::Embedding not_a_point_embed{nullptr}, no_mask_embed{nullptr};
  torch::nn::Sequential mask_downscaling{nullptr};
  int64_t embed_dim, grid_size, input_image_size;

 private:
  torch::Tensor embed_points(const torch::Tensor& points, const torch::Tensor& labels, bool pad);
  torch::Tensor embed_boxes(const torch::Tensor& boxes);
  torch::Tensor point_embedding(int64_t i);
};
TORCH_MODULE(PromptEncoder);

}  // namespace sparser::model
