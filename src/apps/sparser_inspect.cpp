// sparser_inspect: lists a model's state-dict keys and shapes (in the format of the
// official key lists in shared/fixtures) and what a fine-tuning method trains.
#include <boost/program_options.hpp>

#include <iostream>
#include <map>

#include "checkpoint/state_dict.h"
#include "config/method_section.h"
#include "config/model_section.h"
#include "methods/trainable.h"
#include "train/model_setup.h"

namespace po = boost::program_options;
using namespace sparser;

namespace {

void print_state(const std::string& title, const checkpoint::StateDict& state) {
  std::map<std::string, int64_t> per_module;
  std::vector<std::string> module_order;
  int64_t total = 0;
  for (const auto& [key, tensor] : state) {
    const auto module = key.substr(0, key.find('.'));
    if (!per_module.count(module)) module_order.push_back(module);
    per_module[module] += tensor.numel();
    total += tensor.numel();
  }
  std::cout << "# " << title << ": key, shape; " << state.size() << " entries, " << total << " values\n# ";
  for (size_t i = 0; i < module_order.size(); ++i)
    std::cout << (i ? ", " : "") << module_order[i] << " " << per_module[module_order[i]];
  std::cout << "\n";
  for (const auto& [key, tensor] : state) {
    std::cout << key << " [";
    for (int64_t d = 0; d < tensor.dim(); ++d) std::cout << (d ? ", " : "") << tensor.size(d);
    std::cout << "]\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  po::options_description options(
      "Usage: sparser_inspect (--preset NAME | --config FILE | --checkpoint FILE) [--trainable]\n\n"
      "Prints every state-dict key and shape, one per line, with totals per module, in the\n"
      "format of shared/fixtures/sam_vit_*_state_dict.txt (so the two can be diffed).\n"
      "With --trainable, prints instead what the config's [method] trains, exactly, per\n"
      "module and per kind (decoder, parser, lora, adapter, fact).\n\nOptions");
  std::string preset, config_path, checkpoint_path, checkpoint_key;
  options.add_options()("help,h", "show this help")("preset", po::value<std::string>(&preset),
                                                     "vit_b, vit_l or vit_h (random weights)")(
      "config", po::value<std::string>(&config_path), "a config file: its [model] (and [method]) tables")(
      "checkpoint", po::value<std::string>(&checkpoint_path), "a .pth file: list its tensors")(
      "checkpoint-key", po::value<std::string>(&checkpoint_key),
      "with --checkpoint: key of the state dict in a checkpoint that nests it; default: found automatically")(
      "trainable", "print the trainable tensors and counts of the config's [method]");
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, options), vm);
    po::notify(vm);
    if (vm.count("help") || (preset.empty() && config_path.empty() && checkpoint_path.empty())) {
      std::cout << options << "\n";
      return vm.count("help") ? 0 : 2;
    }
    // Each names what to list; with two, one would be ignored in silence.
    if (vm.count("preset") + vm.count("config") + vm.count("checkpoint") > 1)
      throw std::invalid_argument("give one of --preset, --config and --checkpoint, not several");
    if (vm.count("checkpoint-key") && checkpoint_path.empty())
      throw std::invalid_argument("--checkpoint-key applies only with --checkpoint");
    if (vm.count("trainable") && !checkpoint_path.empty())
      throw std::invalid_argument("--trainable needs a --config with a [method] table, not --checkpoint");
    if (!checkpoint_path.empty()) {
      print_state(checkpoint_path, checkpoint::read_state_dict(checkpoint_path, checkpoint_key));
      return 0;
    }
    config::ModelSection model_section;
    std::optional<methods::MethodConfig> method;
    if (!preset.empty()) {
      model_section.sam = model::sam_preset(preset);
    } else {
      const auto root = config::parse_toml_file(config_path);
      const config::TomlSection top(&root, config_path, "");
      model_section = config::parse_model_section(top.section("model"));
      if (top.has("method")) method = config::parse_method_section(top.section("method"));
    }
    if (vm.count("trainable")) {
      if (!method) throw std::invalid_argument("--trainable needs a --config with a [method] table");
      model_section.checkpoint.clear();  // counts do not depend on the weights
      auto setup = train::build_model(model_section, method);
      for (const auto& [name, tensor] : methods::trainable_parameters(*setup.sam))
        std::cout << name << " " << tensor.sizes() << "\n";
      std::cout << "\nmethod " << methods::to_string(method->name) << "\n"
                << methods::format_trainable(methods::count_trainable(*setup.sam));
      return 0;
    }
    model::Sam sam(model_section.sam);
    print_state("sparser " + model_section.sam.preset + " state_dict", checkpoint::module_state(*sam));
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "sparser_inspect: " << e.what() << "\n";
    return 2;
  }
}
