#pragma once
// Analytic floating-point operation counts (multiply-add = 2 FLOPs) of SAM's forward
// pass and of a training step, for sparser_bench's efficiency figures. Only the matrix
// products and convolutions are counted: they are nearly all of the work.
#include <cstdint>

#include "methods/method_config.h"
#include "model/sam_config.h"

namespace sparser::train {

// Patch embedding, every block (windowed blocks on the padded grid) and the neck.
double encoder_forward_flops(const model::SamConfig& config);
// The part of the encoder forward that is the neck (trained by PARSER-conv).
double neck_forward_flops(const model::SamConfig& config);
// Tokens the mask decoder's transformer carries for one box prompt: the IoU token, a mask
// token per output, the box's two corners.
int64_t decoder_tokens_per_box(const model::SamConfig& config);
// Prompt encoder (boxes only) and mask decoder for `boxes` prompts.
double decoder_forward_flops(const model::SamConfig& config, int64_t boxes);
// One training step: forward, plus a backward that computes input gradients back to the
// first trained layer and weight gradients where weights train. `cached`: the trunk's
// output is given (frozen-trunk cache), so only neck and decoder run.
double training_step_flops(const model::SamConfig& config, const methods::MethodConfig& method, int64_t boxes,
                           bool cached);

}  // namespace sparser::train
