// sparser_parity FIXTURE_DIR: checks the C++ SAM against a reference fixture made by
// the official implementation; exits 1 if any output differs by more than the tolerance.
#include <boost/program_options.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>

#include "model/fixture_parity.h"

namespace po = boost::program_options;

int main(int argc, char** argv) {
  po::options_description visible(
      "Usage: sparser_parity [options] FIXTURE_DIR\n\n"
      "Loads FIXTURE_DIR/config.toml ([model] table), FIXTURE_DIR/weights.pth (official state dict)\n"
      "and FIXTURE_DIR/cases.h5 (inputs and the official model's outputs), recomputes every\n"
      "output (encoder_trunk, image_embeddings, dense_pe and, per case, the prompt embeddings,\n"
      "low_res_logits, iou_predictions, mask_logits) and prints the max abs error of each.\n"
      "Exit status: 0 if all are within the tolerance, 1 if not, 2 on bad input.\n\nOptions");
  double tolerance = 1e-4;
  visible.add_options()("help,h", "show this help")(
      "tolerance", po::value<double>(&tolerance)->default_value(1e-4), "max abs error allowed per output");
  po::options_description all;
  std::string fixture_dir;
  all.add(visible).add_options()("fixture", po::value<std::string>(&fixture_dir));
  po::positional_options_description positional;
  positional.add("fixture", 1);

  try {
    po::variables_map vm;
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    if (vm.count("help")) {
      std::cout << visible << "\n";
      return 0;
    }
    po::notify(vm);
    if (fixture_dir.empty()) throw po::error("missing FIXTURE_DIR (see --help)");
    if (!(tolerance >= 0 && std::isfinite(tolerance)))
      throw po::error("--tolerance must be a finite number >= 0");

    const auto results = sparser::model::run_fixture_parity(fixture_dir);
    int failures = 0;
    for (const auto& r : results) {
      const bool ok = r.max_abs_error <= tolerance;
      failures += ok ? 0 : 1;
      std::printf("%-48s %.3e  %s\n", r.output.c_str(), r.max_abs_error, ok ? "ok" : "FAIL");
    }
    std::printf("%zu outputs, %d above tolerance %.1e\n", results.size(), failures, tolerance);
    return failures == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "sparser_parity: " << e.what() << "\n";
    return 2;
  }
}
