#include "methods/trainable.h"

#include <iomanip>
#include <sstream>

#include "checkpoint/state_dict.h"
#include "model/hooked_layers.h"

namespace sparser::methods {

NamedTensors trainable_parameters(const torch::nn::Module& module) {
  NamedTensors out;
  for (const auto& p : module.named_parameters())
    if (p.value().requires_grad()) out.emplace_back(p.key(), p.value());
  return out;
}

namespace {
// Tensors a method adds live under a module named after it (…qkv.lora.A_q,
// image_encoder.fact.U); the official SAM has no module of these names.
std::string method_owning(const std::string& name) {
  std::istringstream parts(name);
  std::string part;
  while (std::getline(parts, part, '.'))
    for (const char* method : {"parser", "lora", "adapter", "fact"})
      if (part == method) return method;
  return "";
}

std::string kind_of(const std::string& name) {
  if (auto method = method_owning(name); !method.empty()) return method;
  const auto top = name.substr(0, name.find('.'));
  if (top == "mask_decoder") return "decoder";
  if (top == "prompt_encoder") return "prompt_encoder";
  return "encoder";
}
}  // namespace

TrainableCount count_trainable(const torch::nn::Module& module) {
  TrainableCount count;
  for (const auto& [name, tensor] : trainable_parameters(module)) {
    count.total += tensor.numel();
    count.by_module[name.substr(0, name.find('.'))] += tensor.numel();
    count.by_kind[kind_of(name)] += tensor.numel();
  }
  return count;
}

std::string format_trainable(const TrainableCount& count) {
  std::ostringstream out;
  auto row = [&](const std::string& label, int64_t n) {
    out << "  " << std::left << std::setw(24) << label << std::right << std::setw(12) << n << "  (" << std::fixed
        << std::setprecision(1) << n / 1024.0 << "K)\n";
  };
  out << "trainable parameters by module:\n";
  for (const auto& [module, n] : count.by_module) row(module, n);
  out << "trainable parameters by kind:\n";
  for (const auto& [kind, n] : count.by_kind) row(kind, n);
  row("total", count.total);
  return out.str();
}

NamedTensors merged_state_dict(model::SamImpl& sam, bool keep_unmergeable) {
  torch::NoGradGuard no_grad;
  std::map<std::string, torch::Tensor> merged_weights;
  bool any_unmergeable = false;
  for (const auto& item : sam.named_modules("", /*include_self=*/false)) {
    auto layer = std::dynamic_pointer_cast<model::HookedLayer>(item.value());
    if (!layer || !layer->hook()) continue;
    if (auto w = layer->hook()->merged_weight(layer->weight)) {
      merged_weights[item.key() + ".weight"] = w->detach().contiguous();
    } else if (!keep_unmergeable) {
      throw std::runtime_error("export: the " + layer->hook()->name() + " at " + item.key() +
                               " adds layers the official SAM does not have, so no official state dict "
                               "reproduces it (keep its tensors under their own names to export anyway)");
    } else {
      any_unmergeable = true;
    }
  }
  NamedTensors out;
  auto add = [&](const std::string& key, const torch::Tensor& value) {
    // A method's own tensors survive only when they could not be folded in.
    if (!method_owning(key).empty() && !any_unmergeable) return;
    auto it = merged_weights.find(key);
    out.emplace_back(key, it != merged_weights.end() ? it->second : value.detach());
  };
  // In state-dict order (each module's parameters, buffers, then its children), as official.
  for (const auto& [key, value] : checkpoint::module_state(sam)) add(key, value);
  return out;
}

void load_delta(model::SamImpl& sam, const NamedTensors& delta, const std::string& source) {
  std::map<std::string, torch::Tensor> targets;
  for (const auto& p : sam.named_parameters()) targets[p.key()] = p.value();
  for (const auto& b : sam.named_buffers()) targets[b.key()] = b.value();
  std::vector<std::string> unknown, mismatched;
  for (const auto& [key, value] : delta) {
    auto it = targets.find(key);
    if (it == targets.end()) unknown.push_back(key);
    else if (it->second.sizes() != value.sizes()) mismatched.push_back(key);
  }
  if (!unknown.empty() || !mismatched.empty()) {
    std::string msg = source + ": delta does not fit this model/method";
    for (const auto& k : unknown) msg += "\n  unexpected key: " + k;
    for (const auto& k : mismatched) msg += "\n  shape mismatch: " + k;
    throw std::runtime_error(msg);
  }
  torch::NoGradGuard no_grad;
  for (const auto& [key, value] : delta) targets.at(key).copy_(value);
}

}  // namespace sparser::methods
