#pragma once
// A stride-1 "same" convolution (odd k×k kernel, padding k/2) on the CPU as k² matrix
// products, one per kernel tap, over shifted views of one zero-padded channels-last copy
// of the input. Rows of the padded image are laid end to end, so the input under tap
// (dy, dx) for every output pixel is one contiguous H·(W+k-1)×C matrix starting at row
// dy·(W+k-1) + dx; the k-1 extra columns per row are computed and dropped. No im2col
// matrix is made, and the backward pass is k² products each way as well — for the
// neck's 3×3, 256-channel convolution at 64×64 about 1.5× faster than LibTorch's
// (oneDNN) convolution backward on these machines, where SAM-PARSER trains the neck.
#include <torch/torch.h>

namespace sparser::model {

// Whether shifted_conv2d computes this convolution (else use torch::conv2d).
bool shifted_conv2d_applies(const torch::Tensor& input, const torch::Tensor& weight, int64_t stride, int64_t padding);

// input B×C×H×W (any strides), weight O×C×k×k, bias O or undefined → B×O×H×W with
// channels-last strides. In the input's dtype (the weight is cast to it).
torch::Tensor shifted_conv2d(const torch::Tensor& input, const torch::Tensor& weight, const torch::Tensor& bias);

}  // namespace sparser::model
