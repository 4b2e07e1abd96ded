// The CUDA path: a training step of every method on the GPU computes what the CPU
// computes. Skipped where no GPU is visible (CPU builds, CI); run on a GPU machine.
#include <gtest/gtest.h>

#include "methods/step_scope.h"
#include "methods/trainable.h"
#include "test_models.h"
#include "train/loss.h"
#include "train/precision.h"
#include "train/training_step.h"

using namespace sparser;
using fixtures::method_label;
using fixtures::parser_variant;
using methods::MethodName;

namespace {

struct StepResult {
  double loss = 0;
  torch::Tensor gradient;  // all trainable parameters' gradients, flattened, on the CPU
};

// One step's loss and gradients (three boxes, in decoder passes of two) of the tiny
// fixture SAM with `method`, on `device`, optionally under bfloat16 autocast.
StepResult training_step(const methods::MethodConfig& method, torch::Device device, bool bf16) {
  torch::manual_seed(0);  // the methods' own random initialisation, the same on both devices
  auto setup = fixtures::tiny_model(method);
  auto& sam = *setup.sam;
  sam.to(device);
  const auto input = fixtures::fixture_input().to(device);
  const auto boxes = torch::tensor({{10.f, 20.f, 90.f, 100.f}, {30.f, 5.f, 60.f, 70.f}, {0.f, 0.f, 120.f, 64.f}});
  const auto L = 4 * sam.config().embedding_size();
  const auto targets = (torch::rand({3, 1, L, L}) > 0.5).to(torch::kFloat);
  methods::StepScope step(sam);
  torch::Tensor embedding;
  {
    train::AutocastScope autocast(device, bf16);
    embedding = sam.encode(input);
  }
  const double loss = train::backward_image_loss(sam, embedding, boxes.to(device), targets, train::LossWeights{},
                                                 /*prompts_per_pass=*/2, device);
  step.finish_backward();
  std::vector<torch::Tensor> grads;
  for (const auto& [name, p] : methods::trainable_parameters(sam))
    grads.push_back(p.grad().defined() ? p.grad().flatten().to(torch::kCPU) : torch::zeros({p.numel()}));
  return {loss, torch::cat(grads)};
}

std::vector<methods::MethodConfig> every_method() {
  std::vector<methods::MethodConfig> methods;
  for (auto name : {MethodName::DecoderOnly, MethodName::Lora, MethodName::Adapter, MethodName::Fact})
    methods.push_back(fixtures::method_named(name));
  for (const auto& layers : {"conv", "transformer", "both"})
    for (auto train : {methods::ParserTrain::Coefficients, methods::ParserTrain::Bases, methods::ParserTrain::Both})
      methods.push_back(parser_variant(layers, train));
  return methods;
}

double relative_difference(const torch::Tensor& a, const torch::Tensor& reference) {
  return (a - reference).norm().item<double>() / reference.norm().item<double>();
}

}  // namespace

TEST(CudaTrainingStep, EveryMethodGivesTheCpuLossAndGradients) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device visible";
  for (const auto& method : every_method()) {
    const auto cpu = training_step(method, torch::kCPU, false);
    const auto gpu = training_step(method, torch::kCUDA, false);
    ASSERT_GT(cpu.gradient.norm().item<double>(), 0.0) << method_label(method);
    // cuDNN's convolutions may use TF32 (10-bit mantissa) by default: agreement to ~1e-3.
    EXPECT_NEAR(gpu.loss, cpu.loss, 1e-3 * std::abs(cpu.loss)) << method_label(method);
    EXPECT_LT(relative_difference(gpu.gradient, cpu.gradient), 1e-2) << method_label(method);
  }
}

TEST(CudaTrainingStep, Bf16AutocastStaysCloseToFloat32) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device visible";
  auto parser = fixtures::method_named(MethodName::Parser);
  parser.parser_layers = {"conv"};
  for (const auto& method : {parser, fixtures::method_named(MethodName::Lora)}) {
    const auto fp32 = training_step(method, torch::kCUDA, false);
    const auto bf16 = training_step(method, torch::kCUDA, true);
    // bfloat16 keeps 8 bits of mantissa: the loss within a few per cent, the gradient's
    // direction nearly the same.
    EXPECT_NEAR(bf16.loss, fp32.loss, 0.05 * std::abs(fp32.loss)) << method_label(method);
    const double cosine =
        (bf16.gradient * fp32.gradient).sum().item<double>() / (bf16.gradient.norm() * fp32.gradient.norm()).item<double>();
    EXPECT_GT(cosine, 0.95) << method_label(method);
  }
}
