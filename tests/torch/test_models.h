#pragma once
// Shared set-up for the model and method tests: the tiny fixture SAM with its
// official weights, and the fixture's preprocessed input.
#include <torch/torch.h>

#include <string>

#include "config/model_section.h"
#include "io/hdf5_file.h"
#include "methods/method_config.h"
#include "model/sam.h"
#include "train/model_setup.h"

namespace sparser::fixtures {

inline std::string fixture_dir() { return std::string(SPARSER_FIXTURES_DIR) + "/sam_tiny"; }

inline config::ModelSection tiny_model_section() {
  auto section = config::load_model_section(fixture_dir() + "/config.toml");
  section.checkpoint = fixture_dir() + "/weights.pth";
  return section;
}

inline train::ModelSetup tiny_model(const std::optional<methods::MethodConfig>& method = std::nullopt) {
  return train::build_model(tiny_model_section(), method);
}

inline torch::Tensor fixture_input() {
  io::Hdf5File cases(fixture_dir() + "/cases.h5", io::Hdf5File::Mode::Read);
  std::vector<int64_t> shape;
  auto data = cases.read<float>("input", &shape);
  return torch::tensor(data).reshape(shape);
}

// Low-res logits and IoU predictions for two boxes: the outputs every test compares.
inline torch::Tensor predict(model::SamImpl& sam, const torch::Tensor& input) {
  model::Prompts prompts;
  prompts.boxes = torch::tensor({{10.f, 20.f, 90.f, 100.f}, {30.f, 5.f, 60.f, 70.f}}).to(input.dtype());
  auto out = sam.decode(sam.encode(input), prompts, /*multimask_output=*/true);
  return torch::cat({out.low_res_logits.flatten(), out.iou_predictions.flatten()});
}

inline methods::MethodConfig method_named(methods::MethodName name) {
  methods::MethodConfig c;
  c.name = name;
  c.parser_layers = {"both"};
  return c;
}

inline methods::MethodConfig parser_variant(const std::string& layers, methods::ParserTrain train) {
  auto c = method_named(methods::MethodName::Parser);
  c.parser_layers = {layers};
  c.parser_train = train;
  return c;
}

// "lora", "parser-conv-coefficients": for failure messages and file names.
inline std::string method_label(const methods::MethodConfig& c) {
  std::string text = methods::to_string(c.name);
  if (c.name == methods::MethodName::Parser)
    text += "-" + c.parser_layers.front() + "-" + methods::to_string(c.parser_train);
  return text;
}

}  // namespace sparser::fixtures
