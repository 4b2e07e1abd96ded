// sparser_export: folds a run's trained delta into its base checkpoint and writes a
// full state dict with the official key names (loadable by the official SAM code).
#include <boost/program_options.hpp>

#include <iostream>

#include "checkpoint/state_dict.h"
#include "config/run_config.h"
#include "methods/trainable.h"
#include "train/model_setup.h"

namespace po = boost::program_options;
using namespace sparser;

int main(int argc, char** argv) {
  po::options_description options(
      "Usage: sparser_export --config RUN_CONFIG --delta DELTA.pth --out MODEL.pth [--keep-unmergeable]\n\n"
      "Builds the model of RUN_CONFIG ([model] with its base checkpoint, [method]), loads the\n"
      "tensors a run trained (DELTA.pth), folds every PARSER/LoRA/FacT update into its layer's\n"
      "weight and writes the result under the official key names: Python's torch.load and\n"
      "segment_anything's Sam.load_state_dict accept it.\n\nOptions");
  std::string config_path, delta_path, out_path;
  options.add_options()("help,h", "show this help")("config", po::value<std::string>(&config_path),
                                                     "the run's config (resolved config.toml of a run directory)")(
      "delta", po::value<std::string>(&delta_path), "the trained tensors (a run's checkpoint delta)")(
      "out", po::value<std::string>(&out_path), "output .pth")(
      "keep-unmergeable", "keep adapter tensors under their own names (the official SAM cannot load them)");
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, options), vm);
    po::notify(vm);
    if (vm.count("help")) {
      std::cout << options << "\n";
      return 0;
    }
    if (config_path.empty() || delta_path.empty() || out_path.empty())
      throw std::invalid_argument("--config, --delta and --out are required (see --help)");
    const auto run = config::load_run_config(config_path);
    if (run.model.checkpoint.empty())
      std::cerr << "sparser_export: warning: " << config_path << " names no base checkpoint; frozen tensors are random\n";
    auto setup = train::build_model(run.model, run.method);
    methods::load_delta(*setup.sam, checkpoint::read_state_dict(delta_path), delta_path);
    const auto merged = methods::merged_state_dict(*setup.sam, vm.count("keep-unmergeable") > 0);
    checkpoint::write_state_dict(out_path, merged);
    std::cout << "wrote " << merged.size() << " tensors to " << out_path << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "sparser_export: " << e.what() << "\n";
    return 2;
  }
}
