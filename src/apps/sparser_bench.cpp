// sparser_bench: times a training step of every fine-tuning method (with and without the
// frozen-trunk cache where it applies), the encoder forward, sample loading and, under
// mpirun, the gradient all-reduce; prints FLOPs, efficiency against the machine's GEMM
// rate and each step's peak memory. Each measurement runs in a fresh child process, so
// its peak resident memory is its own.
#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "config/model_section.h"
#include "distributed/environment.h"
#include "methods/apply_method.h"
#include "methods/trainable.h"
#include "train/benchmark.h"
#include "train/flop_count.h"
#include "train/memory_reuse.h"
#include "train/trainer.h"

namespace po = boost::program_options;
using namespace sparser;

namespace {

struct Item {
  std::string name;
  methods::MethodConfig method;
  bool cached = false;
  bool forward_only = false;
  std::string uncached;  // of a "+cache" item: the name of the same method's uncached item
};

// encoder_forward, every method, and "<method>+cache" where the trunk stays frozen.
std::vector<Item> all_items() {
  using methods::MethodName;
  using methods::ParserTrain;
  std::vector<Item> items{{"encoder_forward", {}, false, true}};
  auto add = [&](const std::string& name, MethodName m, std::vector<std::string> layers = {},
                 ParserTrain train = ParserTrain::Coefficients) {
    methods::MethodConfig c;
    c.name = m;
    c.parser_layers = std::move(layers);
    c.parser_train = train;
    items.push_back({name, c});
    if (methods::leaves_trunk_frozen(c)) items.push_back({name + "+cache", c, true, false, name});
  };
  add("zero_shot", MethodName::ZeroShot);
  add("decoder_only", MethodName::DecoderOnly);
  for (const char* layers : {"conv", "transformer", "both"})
    for (auto [train, label] : {std::pair{ParserTrain::Coefficients, "coefficients"}, {ParserTrain::Bases, "bases"},
                                {ParserTrain::Both, "both"}})
      add(std::string("parser-") + layers + "-" + label, MethodName::Parser, {layers}, train);
  add("lora", MethodName::Lora);
  add("adapter", MethodName::Adapter);
  add("fact", MethodName::Fact);
  return items;
}

// a[i] / b[i], for the samples both have (the same round or turn).
std::vector<double> ratios(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> out;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) out.push_back(a[i] / b[i]);
  return out;
}

// An item's measurements: one per round (its own process each time) or per turn (--interleave).
struct Samples {
  std::vector<double> seconds, gemm_flops, page_faults;  // page faults per timed step
  int64_t warmup = 0;                                     // the most warm-up steps a round took
  double peak_rss_bytes = 0, peak_device_bytes = 0;
  nlohmann::json profile;
};

train::Workload make_workload(const train::BenchOptions& bench, const Item& item) {
  return item.forward_only ? train::encoder_forward_workload(bench)
                           : train::training_step_workload(bench, item.method, item.cached);
}

bool selected(const std::string& only, const std::string& name) {
  return only.empty() || ("," + only + ",").find("," + name + ",") != std::string::npos;
}

// A misspelt --methods name would otherwise select nothing, in silence.
void check_method_names(const std::string& only) {
  std::vector<std::string> valid{"none"};  // no method: the encoder forward (and --shards) alone
  for (const auto& item : all_items())
    if (!item.forward_only) valid.push_back(item.name);
  std::stringstream list(only);
  for (std::string name; std::getline(list, name, ',');)
    if (std::find(valid.begin(), valid.end(), name) == valid.end()) {
      std::string message = "--methods: unknown name \"" + name + "\"; the names are";
      for (const auto& v : valid) message += " " + v;
      throw std::invalid_argument(message + " (the encoder forward is always measured)");
    }
}

// Under mpirun sparser_bench times only the gradient all-reduce: the options of the other
// measurements are refused rather than ignored.
void check_all_reduce_options(const po::variables_map& vm, const std::string& only) {
  for (const char* option : {"image-size", "boxes", "prompts-per-pass", "repeats", "warmup", "rounds", "interleave",
                             "shards", "loads", "precision", "profile"})
    if (vm.count(option) && !vm[option].defaulted())
      throw std::invalid_argument(std::string("--") + option +
                                  " does not apply under mpirun, which times only the gradient all-reduce");
  if (only.find("+cache") != std::string::npos)
    throw std::invalid_argument("--methods: under mpirun, which times only the gradient all-reduce, name methods "
                                "without '+cache' (a cached row trains what its uncached row trains)");
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs this program again with --item NAME and returns the JSON line it prints.
nlohmann::json measure_in_child(int argc, char** argv, const std::string& item) {
  // The path of this very binary (inside popen's shell, /proc/self/exe is the shell).
  std::string command = shell_quote(std::filesystem::read_symlink("/proc/self/exe").string());
  for (int i = 1; i < argc; ++i) command += " " + shell_quote(argv[i]);
  command += " --item " + shell_quote(item);
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot start a measurement process");
  std::string output;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
  if (::pclose(pipe) != 0) throw std::runtime_error(item + ": measurement failed: " + output);
  // The result is the last line (LibTorch may have warned before it).
  while (!output.empty() && output.back() == '\n') output.pop_back();
  const auto newline = output.rfind('\n');
  return nlohmann::json::parse(newline == std::string::npos ? output : output.substr(newline + 1));
}

int run_all_reduce(const train::BenchOptions& bench, const std::string& only, bool json) {
  distributed::Environment env;
  // NCCL for CUDA tensors (one GPU per rank), MPI for CPU ones.
  const auto device = bench.device.is_cuda() ? env.device() : bench.device;
  auto comm = distributed::make_communicator(env, device);
  for (const auto& item : all_items()) {
    if (item.forward_only || item.cached || !selected(only, item.name)) continue;
    model::Sam sam(bench.model);
    methods::apply_method(*sam, item.method);
    const auto values = methods::count_trainable(*sam).total;
    if (values == 0) continue;
    const auto t = train::time_allreduce(*comm, values, device);
    if (!env.is_root()) continue;
    if (json)
      std::cout << nlohmann::json{{"name", "allreduce_" + item.name}, {"bytes", values * 4},
                                  {"ranks", env.world_size()}, {"device", device.str()},
                                  {"seconds", t.median_seconds}}.dump() << "\n";
    else
      std::printf("all-reduce %-34s %8.1f MB %9.3f ms (%d ranks, %s)\n", item.name.c_str(), values * 4 / 1e6,
                  t.median_seconds * 1e3, env.world_size(), device.str().c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  train::keep_freed_memory_for_reuse();
  po::options_description options(
      "Usage: sparser_bench (--preset NAME | --config FILE) [options]\n"
      "       mpirun -np 2 sparser_bench --preset vit_b        (the gradient all-reduce)\n\n"
      "Times (warm-up, then the median of --repeats) one training step of each method on random\n"
      "weights and data: one image, --boxes box prompts (--prompts-per-pass at a time through the\n"
      "mask decoder), BCE+Dice, backward, Adam; '+cache' rows take the trunk's output as given\n"
      "(the frozen-trunk cache). Also the encoder forward alone, the device's GEMM rate (1024³\n"
      "on a CPU, 8192³ on a GPU), sample loading (--shards) and, with --profile, where each\n"
      "measured step's time goes. Columns: median seconds, images/s, ratio to the encoder\n"
      "forward, GFLOP per step (of the official computation: model FLOPs), the GEMM rate\n"
      "measured around that row's timing, efficiency = FLOP/s ÷ that GEMM rate, peak memory of\n"
      "the measurement's own process (resident memory on the CPU; on a GPU, the most the CUDA\n"
      "caching allocator had handed out, as torch.cuda.max_memory_allocated). Ratios (x fwd, and\n"
      "how many times faster a '+cache' row is than its uncached row, when both are measured)\n"
      "are medians of the ratios within each round (or turn, with --interleave).\n\n"
      "Under mpirun (more than one rank), only the gradient all-reduce of each selected method is\n"
      "timed (2 warm-up, median of 10); of the options, --preset, --config, --methods (without\n"
      "'+cache' rows), --device, --threads and --json apply, and the others are refused.\n\nOptions");
  std::string preset = "vit_b", config_path, only, item_name, shards, device_name = "auto", precision = "fp32";
  int64_t image_size = 0, loads = 200, threads = 0, rounds = 1;
  train::BenchOptions bench;
  const std::string warmup_help = "untimed repetitions first; then up to " + std::to_string(train::kMaxExtraWarmup) +
                                  " more while a step still page-faults (its memory not yet all touched once), so "
                                  "that the timed steps are the steady state (0: no warm-up at all)";
  options.add_options()("help,h", "show this help")("preset", po::value<std::string>(&preset)->default_value("vit_b"),
                                                     "vit_b, vit_l or vit_h")(
      "config", po::value<std::string>(&config_path), "take the [model] table of a config instead")(
      "image-size", po::value<int64_t>(&image_size), "override the model's image size (e.g. 256 for a quick look)")(
      "boxes", po::value<int64_t>(&bench.boxes)->default_value(4), "box prompts per step")(
      "prompts-per-pass", po::value<int64_t>(&bench.prompts_per_pass)->default_value(bench.prompts_per_pass),
      "box prompts per mask-decoder pass, as train.prompts_per_pass (0: all at once)")(
      "repeats", po::value<int64_t>(&bench.repeats)->default_value(3), "timed repetitions")(
      "warmup", po::value<int64_t>(&bench.warmup)->default_value(1), warmup_help.c_str())(
      "rounds", po::value<int64_t>(&rounds)->default_value(1),
      "measure every item this many times in turn, each time in its own process, and report the medians (steadier "
      "ratios on a shared machine)")(
      "interleave",
      "measure every item in this one process instead, one step of each in turn --repeats times: the ratios within "
      "each turn are the steadiest on a shared machine, but all items are in memory at once and no item's own peak "
      "memory is known")(
      "methods", po::value<std::string>(&only),
      "comma-separated subset, e.g. decoder_only,parser-conv-coefficients,parser-conv-coefficients+cache; none: "
      "the encoder forward alone (always measured); an unknown name is refused, listing the names")(
      "shards", po::value<std::string>(&shards), "a split manifest: also time loading a sample from it")(
      "loads", po::value<int64_t>(&loads)->default_value(200), "samples loaded for --shards")(
      "threads", po::value<int64_t>(&threads)->default_value(0), "intra-op CPU threads (0: all cores)")(
      "device", po::value<std::string>(&device_name)->default_value("auto"),
      "cpu, cuda, or auto (cuda when this build has CUDA and a GPU is visible)")(
      "precision", po::value<std::string>(&precision)->default_value("fp32"),
      "fp32, or bf16: the image encoder under bfloat16 autocast, as train.precision; the GEMM rate is then bf16's")(
      "profile", "also show where each measured step's time goes: self time per LibTorch operator and input shapes")(
      "json", "print one JSON object per line instead of the table")(
      "item", po::value<std::string>(&item_name), "(internal) measure one item and print it as JSON");
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
    // Zero repeats would leave nothing to take the median of; the children would crash.
    if (bench.repeats < 1) throw std::invalid_argument("--repeats must be at least 1");
    if (bench.warmup < 0) throw std::invalid_argument("--warmup must be 0 or more");
    if (rounds < 1) throw std::invalid_argument("--rounds must be at least 1");
    check_method_names(only);
    if (bench.boxes < 1) throw std::invalid_argument("--boxes must be at least 1");
    if (loads < 1) throw std::invalid_argument("--loads must be at least 1");
    const bool interleave = vm.count("interleave") > 0;
    if (interleave && rounds > 1)
      throw std::invalid_argument("--interleave measures in one process: use --repeats, not --rounds");
    if (bench.prompts_per_pass < 0) throw std::invalid_argument("--prompts-per-pass must be 0 (all) or more");
    if (precision != "fp32" && precision != "bf16")
      throw std::invalid_argument("--precision must be fp32 or bf16, not \"" + precision + "\"");
    bench.bf16 = precision == "bf16";
    if (device_name != "cpu" && device_name != "cuda" && device_name != "auto")
      throw std::invalid_argument("--device must be cpu, cuda or auto, not \"" + device_name + "\"");
    bench.device = train::choose_device(
        device_name, torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU),
        "--device cuda");
    const bool json = vm.count("json") > 0, profile = vm.count("profile") > 0;
    if (interleave && profile)
      throw std::invalid_argument("--profile runs each item in its own process; leave out --interleave");
    // The profile is LibTorch's CPU-side operator timing: on a GPU it would show kernel
    // launches, not kernels.
    if (profile && bench.device.is_cuda())
      throw std::invalid_argument("--profile times CPU operators; on a GPU use Nsight Systems (nsys) instead");
    // LibTorch's own default can be 1 thread where it cannot count the cores.
    torch::set_num_threads(static_cast<int>(threads > 0 ? threads : std::max(1u, std::thread::hardware_concurrency())));

    if (!item_name.empty()) {
      for (const auto& item : all_items())
        if (item.name == item_name) {
          const auto work = make_workload(bench, item);
          const auto t = train::time_workload(item.name, bench, work);
          nlohmann::json result{{"seconds", t.median_seconds},
                                {"warmup_steps", t.warmup},
                                {"page_faults_per_step", t.page_faults_per_step},
                                {"peak_rss_bytes", t.peak_rss_bytes},
                                {"peak_device_bytes", t.peak_device_bytes},
                                {"gemm_flops", t.gemm_flops_per_second}};
          if (profile)
            for (const auto& row : train::profile_workload(work))
              result["profile"].push_back({{"op", row.label}, {"self_ms", row.self_ms}, {"calls", row.calls}});
          std::cout << result.dump() << std::endl;
          return 0;
        }
      throw std::invalid_argument("unknown item " + item_name);
    }
    const char* ranks = std::getenv("OMPI_COMM_WORLD_SIZE");
    if (ranks && std::atoi(ranks) > 1) {
      check_all_reduce_options(vm, only);
      return run_all_reduce(bench, only, json);
    }

    // Before any measurement, so that a wrong path or an empty split costs no minutes.
    const auto sample_source = shards.empty() ? nullptr : train::open_sample_source(shards);

    if (!json) {
      std::printf("model %s, image %ld, %ld boxes (%ld per decoder pass), device %s, %s, %d threads\n",
                  bench.model.preset.c_str(), static_cast<long>(bench.model.image_size),
                  static_cast<long>(bench.boxes), static_cast<long>(bench.prompts_per_pass),
                  bench.device.str().c_str(), precision.c_str(), torch::get_num_threads());
      std::printf("%-40s %9s %8s %9s %8s %8s %6s %9s\n", "step", "median s", "img/s", "x fwd", "GFLOP", "GEMM GF/s",
                  "eff", bench.device.is_cuda() ? "GPU MB" : "peak MB");
    }
    std::vector<Item> measured;
    for (const auto& item : all_items())
      if (item.forward_only || selected(only, item.name)) measured.push_back(item);
    std::map<std::string, Samples> samples_of;
    const auto report_item = [&](const Item& item) {
      const auto& s = samples_of.at(item.name);
      const auto& forward = samples_of.at("encoder_forward");
      const double seconds = train::median(s.seconds), gemm = train::median(s.gemm_flops);
      const double flops = item.forward_only ? train::encoder_forward_flops(bench.model)
                                             : train::training_step_flops(bench.model, item.method, bench.boxes,
                                                                          item.cached);
      const double efficiency = flops / seconds / gemm;
      const double page_faults = train::median(s.page_faults);
      const double ratio_to_forward = train::median(ratios(s.seconds, forward.seconds));
      // A cached row's speed-up over its uncached row, sample by sample.
      const bool speedup_known = item.cached && samples_of.count(item.uncached) > 0;
      const auto speedups =
          speedup_known ? ratios(samples_of.at(item.uncached).seconds, s.seconds) : std::vector<double>{};
      if (json) {
        nlohmann::json row{{"name", item.name},
                           {"device", bench.device.str()},
                           {"precision", precision},
                           {"seconds", seconds},
                           {"images_per_second", 1 / seconds},
                           {"ratio_to_forward", ratio_to_forward},
                           {"gflop", flops / 1e9},
                           {"gemm_gflops", gemm / 1e9},
                           {"efficiency", efficiency},
                           {"warmup_steps", s.warmup},
                           {"page_faults_per_step", page_faults}};
        if (!interleave) row["peak_rss_mb"] = s.peak_rss_bytes / 1048576.0;
        if (!interleave && bench.device.is_cuda()) row["peak_device_mb"] = s.peak_device_bytes / 1048576.0;
        if (speedup_known) {
          row["cache_speedup"] = train::median(speedups);
          row["cache_speedup_samples"] = speedups;
        }
        if (profile) row["profile"] = s.profile;  // of the last round
        std::cout << row.dump() << std::endl;
        return;
      }
      const double peak_mb = (bench.device.is_cuda() ? s.peak_device_bytes : s.peak_rss_bytes) / 1048576.0;
      std::printf("%-40s %9.3f %8.2f %9.2f %8.1f %8.1f %5.0f%% %9s\n", item.name.c_str(), seconds, 1 / seconds,
                  ratio_to_forward, flops / 1e9, gemm / 1e9, 100 * efficiency,
                  interleave ? "-" : std::to_string(std::lround(peak_mb)).c_str());
      if (speedup_known)
        std::printf("    %.1fx faster than %s (median of the ratios within each %s)\n", train::median(speedups),
                    item.uncached.c_str(), interleave ? "turn" : "round");
      if (page_faults > train::kSettledPageFaults)
        std::printf("    timed steps still touched new memory: %.0f page faults a step after %ld warm-up steps\n",
                    page_faults, static_cast<long>(s.warmup));
      if (profile) {
        std::printf("    self ms  calls  operator [input shapes]\n");
        for (size_t i = 0; i < std::min<size_t>(s.profile.size(), 24); ++i)
          std::printf("    %7.1f %6ld  %s\n", s.profile[i]["self_ms"].get<double>(),
                      s.profile[i]["calls"].get<long>(), s.profile[i]["op"].get<std::string>().c_str());
      }
      std::fflush(stdout);
    };
    if (interleave) {
      // Every item in this process, one step of each in turn: all of them live at once.
      std::vector<train::Workload> works;
      for (const auto& item : measured) works.push_back(make_workload(bench, item));
      const auto timing = train::time_interleaved(bench, works);
      for (size_t i = 0; i < measured.size(); ++i) {
        auto& s = samples_of[measured[i].name];
        s.seconds = timing.seconds[i];
        s.gemm_flops = {timing.gemm_flops_per_second};
        s.page_faults.assign(timing.page_faults[i].begin(), timing.page_faults[i].end());
        s.warmup = timing.warmup;
      }
      for (const auto& item : measured) report_item(item);
      const double peak_bytes =
          bench.device.is_cuda() ? train::peak_device_bytes(bench.device) : train::peak_rss_bytes();
      if (!json) std::printf("peak memory of all items together: %.0f MB\n", peak_bytes / 1048576.0);
    } else {
      // Every round measures each item once, each in its own process (which also measures
      // the GEMM rate of those minutes), and the figures are the medians over rounds: a slow
      // spell of a shared machine then touches all items.
      for (int64_t round = 0; round < rounds; ++round)
        for (const auto& item : measured) {
          const auto m = measure_in_child(argc, argv, item.name);
          auto& s = samples_of[item.name];
          s.seconds.push_back(m["seconds"].get<double>());
          s.gemm_flops.push_back(m["gemm_flops"].get<double>());
          s.page_faults.push_back(m["page_faults_per_step"].get<double>());
          s.warmup = std::max(s.warmup, m["warmup_steps"].get<int64_t>());
          s.peak_rss_bytes = std::max(s.peak_rss_bytes, m["peak_rss_bytes"].get<double>());
          s.peak_device_bytes = std::max(s.peak_device_bytes, m["peak_device_bytes"].get<double>());
          if (m.contains("profile")) s.profile = m["profile"];
          if (round + 1 == rounds) report_item(item);
        }
    }
    if (sample_source) {
      const auto t = train::time_sample_loading(*sample_source, bench.model.image_size, loads);
      if (json) std::cout << nlohmann::json{{"name", "sample_loading"}, {"seconds", t.median_seconds}}.dump() << "\n";
      else std::printf("%-40s %9.4f %8.1f (read + decode + resize + jitter, one thread)\n", "sample loading",
                       t.median_seconds, 1 / t.median_seconds);
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "sparser_bench: " << e.what() << "\n";
    return 2;
  }
}
