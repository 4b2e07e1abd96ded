#include "methods/method_config.h"

namespace sparser::methods {

std::string to_string(MethodName name) {
  switch (name) {
    case MethodName::ZeroShot: return "zero_shot";
    case MethodName::DecoderOnly: return "decoder_only";
    case MethodName::Parser: return "parser";
    case MethodName::Lora: return "lora";
    case MethodName::Adapter: return "adapter";
    case MethodName::Fact: return "fact";
  }
  return "?";
}

std::string to_string(ParserTrain train) {
  switch (train) {
    case ParserTrain::Coefficients: return "coefficients";
    case ParserTrain::Bases: return "bases";
    case ParserTrain::Both: return "both";
  }
  return "?";
}

std::vector<std::string> expand_parser_layers(const std::vector<std::string>& layers) {
  const std::vector<std::string> conv{"image_encoder.neck.0", "image_encoder.neck.2"};
  const std::vector<std::string> transformer{"image_encoder.blocks.*.attn.qkv", "image_encoder.blocks.*.attn.proj",
                                             "image_encoder.blocks.*.mlp.lin1", "image_encoder.blocks.*.mlp.lin2"};
  std::vector<std::string> patterns;
  auto add = [&](const std::vector<std::string>& p) { patterns.insert(patterns.end(), p.begin(), p.end()); };
  for (const auto& entry : layers) {
    if (entry == "conv") add(conv);
    else if (entry == "transformer") add(transformer);
    else if (entry == "both") add(transformer), add(conv);
    else patterns.push_back(entry);
  }
  return patterns;
}

bool leaves_trunk_frozen(const MethodConfig& config) {
  switch (config.name) {
    case MethodName::ZeroShot:
    case MethodName::DecoderOnly: return true;
    case MethodName::Parser:
      for (const auto& pattern : expand_parser_layers(config.parser_layers))
        if (pattern.rfind("image_encoder.neck.", 0) != 0) return false;
      return true;
    default: return false;
  }
}

}  // namespace sparser::methods
