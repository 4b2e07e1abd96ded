#pragma once
// One training run (one point of a sweep, one seed): data-parallel training with
// gradient averaging, periodic evaluation, checkpoints, resume, and the run directory.
#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "config/run_config.h"
#include "distributed/communicator.h"
#include "distributed/environment.h"
#include "train/progress.h"
#include "train/training_state.h"

namespace sparser::train {

struct RunSpec {
  config::RunConfig config;
  int64_t seed = 1;
  std::vector<int64_t> configured_seeds;  // every seed the config runs this point with
  std::string run_id;      // e.g. parser-layers=conv-train=coefficients-seed=1
  std::string run_dir;     // <output_dir>/<name>/<run_id>
  nlohmann::json group;    // identifying keys except the seed (for the analysis tables)
};

struct RunOptions {
  bool resume = true;  // continue from the run's newest checkpoint, if there is one
  ProgressStyle progress = ProgressStyle::Auto;
};

// A run this job cannot continue, left as it was: its checkpoint was saved on another
// number of ranks, and a job launched with that number resumes it. sparser_run keeps the
// run's summary.json (e.g. "interrupted") instead of recording a failure.
class RunRefused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Returns the process exit code: 0 completed, kInterruptedExitCode after a requested
// stop (checkpoint saved). Throws RunRefused (above), or another exception on errors (a
// NaN loss names the step and samples);
// `reached` then says how far the run got (steps, images; wall time of earlier sessions).
int train_run(const RunSpec& spec, distributed::Environment& env, distributed::Communicator& comm,
              const RunOptions& options, Position& reached);

// The device a "cpu", "cuda" or "auto" setting names (run.device, sparser_bench --device):
// "auto" is `accelerator` (this rank's GPU; the CPU where there is none). `setting_text`
// names the setting in the error when "cuda" is asked for without a GPU.
torch::Device choose_device(const std::string& setting, torch::Device accelerator, const std::string& setting_text);
// The device a run uses: run.device on this rank.
inline torch::Device choose_device(const std::string& setting, const distributed::Environment& env) {
  return choose_device(setting, env.device(), "run.device = \"cuda\"");
}

}  // namespace sparser::train
