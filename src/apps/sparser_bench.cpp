// sparser_bench: times a training step of every fine-tuning method, the encoder forward
// alone and the machine's GEMM rate, for a preset or custom model at a given size.
#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "config/model_section.h"
#include "distributed/environment.h"
#include "methods/apply_method.h"
#include "methods/trainable.h"
#include "train/benchmark.h"

namespace po = boost::program_options;
using namespace sparser;

namespace {

std::vector<std::pair<std::string, methods::MethodConfig>> all_methods() {
  using methods::MethodName;
  using methods::ParserTrain;
  std::vector<std::pair<std::string, methods::MethodConfig>> out;
  auto add = [&](const std::string& name, MethodName m) {
    methods::MethodConfig c;
    c.name = m;
    out.emplace_back(name, c);
    return &out.back().second;
  };
  add("zero_shot", MethodName::ZeroShot);
  add("decoder_only", MethodName::DecoderOnly);
  for (const char* layers : {"conv", "transformer", "both"})
    for (auto [train, label] : {std::pair{ParserTrain::Coefficients, "coefficients"},
                                {ParserTrain::Bases, "bases"}, {ParserTrain::Both, "both"}}) {
      auto* c = add(std::string("parser-") + layers + "-" + label, MethodName::Parser);
      c->parser_layers = {layers};
      c->parser_train = train;
    }
  add("lora", MethodName::Lora);
  add("adapter", MethodName::Adapter);
  add("fact", MethodName::Fact);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  po::options_description options(
      "Usage: sparser_bench (--preset NAME | --config FILE) [--image-size S] [--methods a,b] [--json]\n\n"
      "Times (warm-up, then the median of --repeats) one training step of each method on random\n"
      "weights and data: a 1-image encoder batch, --boxes box prompts, BCE+Dice, backward, Adam.\n"
      "Also the encoder forward alone and the machine's 1024³ GEMM rate; prints images/s,\n"
      "the step / forward ratio and the peak resident memory (of the process so far).\n"
      "Under mpirun with 2+ ranks it times instead the gradient all-reduce of each method\n"
      "(its trainable values, float32), e.g. mpirun -np 2 sparser_bench --preset vit_b.\n\nOptions");
  std::string preset = "vit_b", config_path, only;
  int64_t image_size = 0;
  train::BenchOptions bench;
  options.add_options()("help,h", "show this help")("preset", po::value<std::string>(&preset)->default_value("vit_b"),
                                                     "vit_b, vit_l or vit_h")(
      "config", po::value<std::string>(&config_path), "take the [model] table of a config instead")(
      "image-size", po::value<int64_t>(&image_size), "override the model's image size (e.g. 256 for a quick look)")(
      "boxes", po::value<int64_t>(&bench.boxes)->default_value(4), "box prompts per step")(
      "repeats", po::value<int64_t>(&bench.repeats)->default_value(3), "timed repetitions")(
      "warmup", po::value<int64_t>(&bench.warmup)->default_value(1), "untimed repetitions first")(
      "methods", po::value<std::string>(&only), "comma-separated subset, e.g. decoder_only,parser-conv-coefficients")(
      "json", "print one JSON object per line instead of the table");
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, options), vm);
    po::notify(vm);
    if (vm.count("help")) {
      std::cout << options << "\n";
      return 0;
    }
    bench.model = config_path.empty() ? model::sam_preset(preset) : config::load_model_section(config_path).sam;
    if (image_size > 0) bench.model.image_size = image_size;
    bench.model.validate();
    const bool json = vm.count("json") > 0;

    distributed::Environment env(argc, argv);
    if (env.world_size() > 1) {
      auto comm = distributed::make_communicator(env, torch::kCPU);
      for (const auto& [name, method] : all_methods()) {
        if (!only.empty() && ("," + only + ",").find("," + name + ",") == std::string::npos) continue;
        model::Sam sam(bench.model);
        methods::apply_method(*sam, method);
        const auto values = methods::count_trainable(*sam).total;
        if (values == 0) continue;
        const auto t = train::time_allreduce(*comm, values);
        if (!env.is_root()) continue;
        if (json)
          std::cout << nlohmann::json{{"name", "allreduce_" + name}, {"bytes", values * 4}, {"ranks", env.world_size()},
                                      {"seconds", t.median_seconds}}.dump() << "\n";
        else
          std::printf("all-reduce %-32s %10.1f MB %10.3f ms (%d ranks)\n", name.c_str(), values * 4 / 1e6,
                      t.median_seconds * 1e3, env.world_size());
      }
      return 0;
    }

    const double gemm = train::gemm_flops_per_second();
    const auto forward = train::time_encoder_forward(bench);
    if (json) {
      std::cout << nlohmann::json{{"name", "gemm_1024"}, {"gflops", gemm / 1e9}}.dump() << "\n";
      std::cout << nlohmann::json{{"name", forward.name}, {"seconds", forward.median_seconds},
                                  {"peak_rss_mb", forward.peak_rss_bytes / 1048576.0}}.dump() << "\n";
    } else {
      std::printf("model %s, image %ld, %ld boxes, %d threads; GEMM %.1f GFLOP/s\n", bench.model.preset.c_str(),
                  static_cast<long>(bench.model.image_size), static_cast<long>(bench.boxes), torch::get_num_threads(),
                  gemm / 1e9);
      std::printf("%-32s %10s %10s %10s %12s\n", "step", "median s", "img/s", "x forward", "peak RSS MB");
      std::printf("%-32s %10.3f %10.2f %10.2f %12.0f\n", "encoder forward", forward.median_seconds,
                  1 / forward.median_seconds, 1.0, forward.peak_rss_bytes / 1048576.0);
    }
    for (const auto& [name, method] : all_methods()) {
      if (!only.empty() && ("," + only + ",").find("," + name + ",") == std::string::npos) continue;
      const auto t = train::time_training_step(bench, method, name);
      if (json) {
        std::cout << nlohmann::json{{"name", name}, {"seconds", t.median_seconds}, {"images_per_second", 1 / t.median_seconds},
                                    {"ratio_to_forward", t.median_seconds / forward.median_seconds},
                                    {"peak_rss_mb", t.peak_rss_bytes / 1048576.0}}.dump() << "\n";
      } else {
        std::printf("%-32s %10.3f %10.2f %10.2f %12.0f\n", name.c_str(), t.median_seconds, 1 / t.median_seconds,
                    t.median_seconds / forward.median_seconds, t.peak_rss_bytes / 1048576.0);
      }
      std::fflush(stdout);
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "sparser_bench: " << e.what() << "\n";
    return 2;
  }
}
