// sparser_prep: converts datasets as distributed into sparser's HDF5 shards
// (docs/data.md). Usage: sparser_prep <subcommand> [options]; --help on either level.
#include <signal.h>

#include <atomic>
#include <iostream>
#include <thread>

#include "conversion_runner.h"
#include "subcommands.h"

namespace {

using namespace sparser::prep;

constexpr const char* kConverterVersion = "sparser_prep 3";

// Set by SIGINT/SIGTERM: the conversion stops between files and removes its staging
// directory instead of dying with it half-written.
std::atomic<bool> stop_requested{false};
std::atomic<int> stop_signal{0};
static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free,
              "written from a signal handler");

extern "C" void request_stop(int signal_number) {
  stop_signal = signal_number;
  stop_requested = true;
}

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = request_stop;
  action.sa_flags = SA_RESETHAND;  // a second signal ends the process at once
  sigemptyset(&action.sa_mask);
  for (const int signal_number : {SIGINT, SIGTERM, SIGHUP}) sigaction(signal_number, &action, nullptr);
}

std::vector<Subcommand> all_subcommands() {
  return {coco_subcommand(), voc_subcommand(), nwpu_subcommand(), whu_subcommand(),
          abdomenct_subcommand(), ssdd_subcommand(), folder_subcommand(), synthetic_subcommand()};
}

void add_common_options(po::options_description& o) {
  o.add_options()("help,h", "show this help")
      ("output,o", po::value<std::string>()->required(), "output directory (<split>-NNNNN.h5 + <split>.manifest.json)")
      ("overwrite", po::bool_switch(), "replace an existing output directory (atomically); without it, refuse")
      ("min-area", po::value<int64_t>()->default_value(16), "drop instance masks with fewer pixels (counted)")
      ("threads", po::value<int>()->default_value(static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))),
       "decoding threads")
      ("shard-size-mb", po::value<int64_t>()->default_value(1024), "target shard size (encoded payload)")
      ("limit", po::value<int64_t>()->default_value(0), "convert only the first N source files per split (0 = all)")
      ("on-error", po::value<std::string>()->default_value("fail"),
       "corrupt or missing input: 'fail' (stop, write nothing) or 'skip' (report each file and go on)")
      ("keep-crowd", po::bool_switch(), "COCO-format data: keep iscrowd=1 annotations as instances (default: skip)")
      ("seed", po::value<uint64_t>()->default_value(0), "seed of the seeded splits (recorded in the manifest)");
}

void print_usage(std::ostream& out) {
  out << "usage: sparser_prep <subcommand> [options]\n\nsubcommands:\n";
  for (const auto& s : all_subcommands()) out << "  " << s.name << std::string(12 - s.name.size(), ' ') << s.summary << "\n";
  out << "\n'sparser_prep <subcommand> --help' lists its options. The format is described in docs/data.md.\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    print_usage(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? 2 : 0;
  }
  const std::string name = argv[1];
  const auto subcommands = all_subcommands();
  const auto it = std::find_if(subcommands.begin(), subcommands.end(), [&](const auto& s) { return s.name == name; });
  if (it == subcommands.end()) {
    std::cerr << "sparser_prep: unknown subcommand '" << name << "'\n";
    print_usage(std::cerr);
    return 2;
  }
  po::options_description options("sparser_prep " + name + ": " + it->summary);
  it->add_options(options);
  add_common_options(options);
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc - 1, argv + 1, options), vm);
    if (vm.count("help")) {
      std::cout << options << "\n";
      return 0;
    }
    po::notify(vm);
    CommonOptions common;
    common.output = vm["output"].as<std::string>();
    common.overwrite = vm["overwrite"].as<bool>();
    common.min_area = vm["min-area"].as<int64_t>();
    common.threads = vm["threads"].as<int>();
    common.shard_size_mb = vm["shard-size-mb"].as<int64_t>();
    common.limit = vm["limit"].as<int64_t>();
    common.keep_crowd = vm["keep-crowd"].as<bool>();
    common.seed = vm["seed"].as<uint64_t>();
    const std::string on_error = vm["on-error"].as<std::string>();
    if (on_error != "fail" && on_error != "skip") throw po::error("--on-error must be 'fail' or 'skip'");
    common.skip_errors = on_error == "skip";
    if (common.shard_size_mb < 1) throw po::error("--shard-size-mb must be at least 1");
    install_stop_handlers();
    // Before planning, which may parse a large annotation file: an existing output is
    // refused at once.
    OutputDirectory output(common.output, common.overwrite);
    const ConversionReport report = run_conversion(it->plan(vm, common), common, kConverterVersion, output,
                                                   stop_requested);
    print_report(report, std::cout);
    return 0;
  } catch (const Interrupted& e) {
    std::cerr << "\nsparser_prep " << name << ": " << e.what() << "\n";
    return 128 + stop_signal;
  } catch (const po::error& e) {
    std::cerr << "sparser_prep " << name << ": " << e.what() << "\n\n" << options << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "sparser_prep " << name << ": error: " << e.what() << "\n";
    return 1;
  }
}
