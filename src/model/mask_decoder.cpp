#include "model/mask_decoder.h"

namespace sparser::model {

MLPImpl::MLPImpl(int64_t input_dim, int64_t hidden_dim, int64_t output_dim, int64_t num_layers) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_layers; ++i)
    layers->push_back(Linear(i == 0 ? input_dim : hidden_dim, i == num_layers - 1 ? output_dim : hidden_dim));
}

torch::Tensor MLPImpl::forward(torch::Tensor x) {
  const auto n = static_cast<int64_t>(layers->size());
  for (int64_t i = 0; i < n; ++i) {
    x = layers[i]->as<Linear>()->forward(x);
    if (i < n - 1) x = torch::relu(x);
  }
  return x;
}

MaskDecoderImpl::MaskDecoderImpl(const SamConfig& c) : num_mask_tokens(c.num_multimask_outputs + 1) {
  const auto dim = c.prompt_embed_dim;
  transformer = register_module("transformer", TwoWayTransformer(c.decoder_depth, dim, c.decoder_num_heads,
                                                                 c.decoder_mlp_dim, c.attention_downsample_rate));
  iou_token = register_module("iou_token", torch::nn::Embedding(1, dim));
  mask_tokens = register_module("mask_tokens", torch::nn::Embedding(num_mask_tokens, dim));
  output_upscaling = register_module(
      "output_upscaling",
      torch::nn::Sequential(PatchConvTranspose2d(dim, dim / 4, 2),
                            LayerNorm(dim / 4, 1e-6),
                            ActivationLayer(Activation::GELU), PatchConvTranspose2d(dim / 4, dim / 8, 2),
                            ActivationLayer(Activation::GELU)));
  output_hypernetworks_mlps = register_module("output_hypernetworks_mlps", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_mask_tokens; ++i) output_hypernetworks_mlps->push_back(MLP(dim, dim, dim / 8, 3));
  iou_prediction_head =
      register_module("iou_prediction_head", MLP(dim, c.iou_head_hidden_dim, num_mask_tokens, c.iou_head_depth));
}

namespace {
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// B×pixels×C upscaled embeddings times one B×C hypernetwork output per prompt set
// (training's case): a matrix-vector product per prompt set, whose backward writes the
// embeddings' gradient as outer products straight into one buffer. As a batched matrix
// product its backward would be a K = 1 product (~4× slower on CPU BLAS, 11 ms a call
// for two 256² masks in a ViT-B step); as autograd's per-set products, each set's
// gradient would first be scattered into a zero tensor of the whole batch.
struct SingleMaskProduct : torch::autograd::Function<SingleMaskProduct> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& upscaled, const torch::Tensor& hyper) {
    const auto flat = upscaled.reshape({upscaled.size(0), upscaled.size(1), -1});
    const auto vectors = hyper.to(flat.scalar_type());  // under autocast the two may differ
    auto masks = torch::empty({flat.size(0), flat.size(1)}, flat.options());
    for (int64_t b = 0; b < flat.size(0); ++b) {
      auto mask = masks[b];
      at::mv_out(mask, flat[b], vectors[b]);
    }
    ctx->save_for_backward({flat, vectors});
    ctx->saved_data["hyper_type"] = static_cast<int64_t>(hyper.scalar_type());
    return masks;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &flat = saved[0], &vectors = saved[1];
    const auto grad_masks = grads[0].to(flat.scalar_type());
    torch::Tensor grad_upscaled, grad_hyper;
    if (ctx->needs_input_grad(0)) {
      grad_upscaled = torch::empty_like(flat);
      for (int64_t b = 0; b < flat.size(0); ++b) {
        auto grad = grad_upscaled[b];
        at::outer_out(grad, grad_masks[b], vectors[b]);
      }
    }
    if (ctx->needs_input_grad(1)) {
      grad_hyper = torch::empty_like(vectors);
      for (int64_t b = 0; b < flat.size(0); ++b) {
        auto grad = grad_hyper[b];
        at::mv_out(grad, flat[b].t(), grad_masks[b]);
      }
      grad_hyper = grad_hyper.to(static_cast<torch::ScalarType>(ctx->saved_data["hyper_type"].toInt()));
    }
    return {grad_upscaled, grad_hyper};
  }
};
}  // namespace

MaskPrediction MaskDecoderImpl::forward(const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
                                        const torch::Tensor& sparse, const torch::Tensor& dense,
                                        bool multimask_output) {
  // Output 0 is the single-mask answer; outputs 1.. are the multi-mask answers.
  const auto first = multimask_output ? 1 : 0;
  const auto last = multimask_output ? num_mask_tokens : 1;
  return predict_masks(image_embeddings, image_pe, sparse, dense, first, last);
}

MaskPrediction MaskDecoderImpl::predict_masks(const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
                                              const torch::Tensor& sparse, const torch::Tensor& dense, int64_t first,
                                              int64_t last) {
  const auto B = sparse.size(0);
  auto output_tokens = torch::cat({iou_token->weight, mask_tokens->weight}, 0).unsqueeze(0).expand({B, -1, -1});
  auto tokens = torch::cat({output_tokens, sparse}, 1);

  TORCH_CHECK(image_embeddings.size(0) == 1 || image_embeddings.size(0) == B, "mask decoder: ",
              image_embeddings.size(0), " image embeddings for ", B, " prompt sets (need 1 or ", B, ")");
  const bool shared_image = image_embeddings.size(0) == 1 && (dense.size(0) == 1 || dense.stride(0) == 0);
  // Official: one copy of the image embedding per prompt set. Shared, one broadcast batch.
  const auto src = shared_image ? image_embeddings + dense.narrow(0, 0, 1)
                                : image_embeddings.expand({B, -1, -1, -1}) + dense;
  const auto h = src.size(2), w = src.size(3);

  auto [hs, keys] = transformer(src, image_pe, tokens);
  auto iou_token_out = hs.select(1, 0);
  auto mask_tokens_out = hs.slice(1, 1, 1 + num_mask_tokens);

  // keys are B×hw×C, channels-last pixels; the upscaling leaves them in patch order.
  const auto upscaled = output_upscaling->forward(keys);
  // Official: every mask, then the selection; the others' products would be discarded.
  std::vector<torch::Tensor> hyper;
  for (int64_t i = first; i < last; ++i)
    hyper.push_back(output_hypernetworks_mlps[i]->as<MLP>()->forward(mask_tokens_out.select(1, i)));
  const auto hyper_in = torch::stack(hyper, 1);
  // Pixels × masks (the gradient reaching `upscaled` stays contiguous), then the patch
  // order of the two 2×2 upscalings (y, x, dy1, dx1, dy2, dx2) back to rows and columns,
  // on the masks rather than on the 8× wider upscaled embedding.
  const auto M = hyper_in.size(1);
  const auto masks =
      M == 1 ? SingleMaskProduct::apply(upscaled, hyper_in.select(1, 0)).unsqueeze(2)
             : torch::matmul(upscaled, hyper_in.transpose(1, 2));
  return {masks.view({keys.size(0), h, w, 2, 2, 2, 2, M})
              .permute({0, 7, 1, 3, 5, 2, 4, 6})
              .reshape({keys.size(0), M, 4 * h, 4 * w}),
          iou_prediction_head(iou_token_out).slice(1, first, last)};
}

}  // namespace sparser::model
