#include "model/prompt_encoder.h"

#include <cmath>

namespace sparser::model {

PositionEmbeddingRandomImpl::PositionEmbeddingRandomImpl(int64_t num_pos_feats) {
  positional_encoding_gaussian_matrix =
      register_buffer("positional_encoding_gaussian_matrix", torch::randn({2, num_pos_feats}));
}

torch::Tensor PositionEmbeddingRandomImpl::pe_encoding(const torch::Tensor& coords) {
  // coords in [0, 1] → [-1, 1], projected onto the random frequencies.
  auto projected = torch::matmul(2 * coords - 1, positional_encoding_gaussian_matrix) * (2 * M_PI);
  return torch::cat({torch::sin(projected), torch::cos(projected)}, -1);
}

torch::Tensor PositionEmbeddingRandomImpl::forward(int64_t h, int64_t w) {
  auto opts = positional_encoding_gaussian_matrix.options();
  auto grid = torch::ones({h, w}, opts);
  auto y_embed = (grid.cumsum(0) - 0.5) / h;
  auto x_embed = (grid.cumsum(1) - 0.5) / w;
  return pe_encoding(torch::stack({x_embed, y_embed}, -1)).permute({2, 0, 1});
}

torch::Tensor PositionEmbeddingRandomImpl::forward_with_coords(const torch::Tensor& coords, int64_t image_h,
                                                              int64_t image_w) {
  const auto dtype = positional_encoding_gaussian_matrix.scalar_type();
  auto size = torch::tensor({static_cast<double>(image_w), static_cast<double>(image_h)}, coords.options().dtype(dtype));
  return pe_encoding(coords.to(dtype) / size);
}

PromptEncoderImpl::PromptEncoderImpl(const SamConfig& c)
    : embed_dim(c.prompt_embed_dim), grid_size(c.embedding_size()), input_image_size(c.image_size) {
  pe_layer = register_module("pe_layer", PositionEmbeddingRandom(embed_dim / 2));
  point_embeddings = register_module("point_embeddings", torch::nn::ModuleList());
  // pos/neg point + 2 box corners
  for (int i = 0; i < 4; ++i) point_embeddings->push_back(torch::nn::Embedding(1, embed_dim));
  not_a_point_embed = register_module("not_a_point_embed", torch::nn::Embedding(1, embed_dim));
  const auto m = c.mask_in_chans;
  using torch::nn::Conv2dOptions;
  mask_downscaling = register_module(
      "mask_downscaling",
      torch::nn::Sequential(torch::nn::Conv2d(Conv2dOptions(1, m / 4, 2).stride(2)), LayerNorm2d(m / 4),
                            ActivationLayer(Activation::GELU), torch::nn::Conv2d(Conv2dOptions(m / 4, m, 2).stride(2)),
                            LayerNorm2d(m), ActivationLayer(Activation::GELU),
                            torch::nn::Conv2d(Conv2dOptions(m, embed_dim, 1))));
  no_mask_embed = register_module("no_mask_embed", torch::nn::Embedding(1, embed_dim));
}

torch::Tensor PromptEncoderImpl::get_dense_pe() { return pe_layer->forward(grid_size, grid_size).unsqueeze(0); }

torch::Tensor PromptEncoderImpl::point_embedding(int64_t i) {
  return point_embeddings[i]->as<torch::nn::Embedding>()->weight;
}

torch::Tensor PromptEncoderImpl::embed_points(const torch::Tensor& points_in, const torch::Tensor& labels_in,
                                              bool pad) {
  auto points = points_in.to(no_mask_embed->weight.scalar_type()) + 0.5;  // shift to the centre of the pixel
  auto labels = labels_in;
  if (pad) {
    const auto B = points.size(0);
    points = torch::cat({points, torch::zeros({B, 1, 2}, points.options())}, 1);
    labels = torch::cat({labels, -torch::ones({B, 1}, labels.options())}, 1);
  }
  auto pe = pe_layer->forward_with_coords(points, input_image_size, input_image_size);
  auto is = [&](int64_t value) { return (labels == value).unsqueeze(-1).to(pe.dtype()); };
  auto padding = is(-1);
  return pe * (1 - padding) + padding * not_a_point_embed->weight + is(0) * point_embedding(0) +
         is(1) * point_embedding(1);
}

torch::Tensor PromptEncoderImpl::embed_boxes(const torch::Tensor& boxes) {
  auto coords = (boxes.to(no_mask_embed->weight.scalar_type()) + 0.5).reshape({-1, 2, 2});
  auto corners = pe_layer->forward_with_coords(coords, input_image_size, input_image_size);
  auto corner_embed = torch::stack({point_embedding(2).squeeze(0), point_embedding(3).squeeze(0)}, 0);
  return corners + corner_embed;
}

PromptEmbeddings PromptEncoderImpl::forward(const Prompts& p) {
  int64_t B = 1;
  if (p.point_coords) B = p.point_coords->size(0);
  else if (p.boxes) B = p.boxes->size(0);
  else if (p.mask_inputs) B = p.mask_inputs->size(0);
  TORCH_CHECK(p.point_coords.has_value() == p.point_labels.has_value(),
              "point prompts need both coordinates and labels");

  auto opts = no_mask_embed->weight.options();
  auto sparse = torch::empty({B, 0, embed_dim}, opts);
  if (p.point_coords)
    sparse = torch::cat({sparse, embed_points(*p.point_coords, *p.point_labels, /*pad=*/!p.boxes)}, 1);
  if (p.boxes) sparse = torch::cat({sparse, embed_boxes(*p.boxes)}, 1);

  torch::Tensor dense = p.mask_inputs
                            ? mask_downscaling->forward(*p.mask_inputs)
                            : no_mask_embed->weight.reshape({1, -1, 1, 1}).expand({B, -1, grid_size, grid_size});
  return {sparse, dense};
}

}  // namespace sparser::model
