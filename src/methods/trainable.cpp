#include "methods/trainable.h"

#include <iomanip>
#include <set>
#include <sstream>

#include "checkpoint/state_dict.h"
#include "methods/method_config.h"
#include "model/hooked_layers.h"

namespace sparser::methods {

NamedTensors trainable_parameters(const torch::nn::Module& module) {
  NamedTensors out;
  for (const auto& p : module.named_parameters())
    if (p.value().requires_grad()) out.emplace_back(p.key(), p.value());
  return out;
}

namespace {
// Tensors a method adds live under a module named after the method (…qkv.lora.A_q,
// image_encoder.fact.U: LayerHook::name()); the official SAM has no module of these names.
std::string method_owning(const std::string& name) {
  std::istringstream parts(name);
  std::string part;
  while (std::getline(parts, part, '.'))
    for (const auto method : {MethodName::Parser, MethodName::Lora, MethodName::Adapter, MethodName::Fact})
      if (part == to_string(method)) return part;
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
  std::map<std::string, torch::Tensor> trainable;
  for (const auto& [name, tensor] : trainable_parameters(sam)) trainable[name] = tensor;
  std::set<std::string> given;
  std::vector<std::string> problems;
  for (const auto& [key, value] : delta) {
    given.insert(key);
    auto it = trainable.find(key);
    if (it == trainable.end())
      problems.push_back("unexpected key (not trained by this method): " + key);
    else if (it->second.sizes() != value.sizes())
      problems.push_back("shape mismatch: " + key + " is " + checkpoint::shape_string(value) + ", the model's " +
                         checkpoint::shape_string(it->second));
  }
  for (const auto& [name, tensor] : trainable)
    if (!given.count(name)) problems.push_back("missing key: " + name);
  if (!problems.empty()) {
    std::string msg = source + ": this delta is not what the config's method trains (" +
                      std::to_string(problems.size()) + " problem(s)); was it saved by a run of this config?";
    for (const auto& p : problems) msg += "\n  " + p;
    throw std::runtime_error(msg);
  }
  torch::NoGradGuard no_grad;
  for (const auto& [key, value] : delta) trainable.at(key).copy_(value);
}

}  // namespace sparser::methods
