#include "methods/apply_method.h"

#include "methods/adapter.h"
#include "methods/fact.h"
#include "methods/lora.h"
#include "methods/parser.h"

namespace sparser::methods {

namespace {
void set_trainable(torch::nn::Module& module, bool trainable) {
  for (auto& p : module.parameters()) p.set_requires_grad(trainable);
}
}  // namespace

std::vector<NamedLayer> apply_method(model::SamImpl& sam, const MethodConfig& config) {
  set_trainable(sam, false);
  std::vector<NamedLayer> hooked;
  switch (config.name) {
    case MethodName::ZeroShot:
    case MethodName::DecoderOnly: break;
    case MethodName::Parser: hooked = apply_parser(sam, config); break;
    case MethodName::Lora: hooked = apply_lora(sam, config); break;
    case MethodName::Adapter: hooked = apply_adapter(sam, config); break;
    case MethodName::Fact: hooked = apply_fact(sam, config); break;
  }
  if (config.name != MethodName::ZeroShot) set_trainable(*sam.mask_decoder, true);
  if (config.train_prompt_encoder) set_trainable(*sam.prompt_encoder, true);
  return hooked;
}

}  // namespace sparser::methods
