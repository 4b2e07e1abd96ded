// sparser_run: trains and evaluates SAM fine-tuning runs, data-parallel over MPI
// ranks (NCCL on GPUs), e.g. `mpirun -np 8 sparser_run experiments/coco.toml`.
#include <boost/program_options.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include "config/config_change.h"
#include "config/sweep.h"
#include "distributed/communicator.h"
#include "distributed/environment.h"
#include "methods/trainable.h"
#include "train/memory_reuse.h"
#include "train/model_setup.h"
#include "train/run_log.h"
#include "train/run_summary.h"
#include "train/stop_signal.h"
#include "train/trainer.h"
#include "train/training_state.h"
#include "util/atomic_file.h"
#include "util/file_lock.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace sparser;

namespace {

const char* kUsage =
    "Usage: sparser_run CONFIG [options]\n"
    "       mpirun -np N sparser_run CONFIG [options]      (data-parallel; srun works too)\n\n"
    "Trains and evaluates every run of CONFIG: its [sweep] grid crossed with run.seeds\n"
    "(one run without a [sweep]). Each run writes <run.output_dir>/<run.name>/<run id>/:\n"
    "config.toml (resolved), metrics.jsonl, summary.json, train.log, checkpoints/, trained.pth.\n"
    "A run whose summary.json says completed is skipped (unless --force); a run with a\n"
    "checkpoint resumes from it. Either is refused if its config.toml differs in a key that\n"
    "changes results (threads, device, workers, checkpoint spacing and the like may change).\n"
    "A run another process is training (it holds <run dir>/.lock) is skipped.\n"
    "SIGTERM/SIGUSR1 save a checkpoint on all ranks and exit 75.\n"
    "Config keys: docs/config.md.\n\nOptions";

void print_dry_run(const config::SweepRun& run) {
  std::cout << "# run " << run.id << "\n" << config::to_toml(run.config);
  auto section = run.config.model;
  section.checkpoint.clear();  // counts do not depend on the weights
  auto setup = train::build_model(section, run.config.method);
  std::cout << methods::format_trainable(methods::count_trainable(*setup.sam)) << "\n";
}

std::string summary_status(const std::string& run_dir) {
  std::ifstream in(run_dir + "/summary.json");
  if (!in) return "";
  try {
    return nlohmann::json::parse(in).value("status", "");
  } catch (const nlohmann::json::exception&) {
    return "";
  }
}

// In each run directory, held by the job that trains the run.
const char* const kRunLockFile = ".lock";
// In a run directory --force started over under Slurm: "<SLURM_JOB_ID> <SLURM_RESTART_COUNT>".
const char* const kForcedByJobFile = ".forced_by_job";

// The Slurm job this process runs in and how often it was requeued; none outside Slurm.
struct SlurmAttempt {
  std::string job;
  long restart = 0;
};
std::optional<SlurmAttempt> slurm_attempt() {
  const char* job = std::getenv("SLURM_JOB_ID");
  if (!job || !*job) return std::nullopt;
  const char* restarts = std::getenv("SLURM_RESTART_COUNT");
  return SlurmAttempt{job, restarts && *restarts ? std::atol(restarts) : 0};
}

// Whether --force discards the run directory. A requeued Slurm job restarts with its
// arguments, --force included: the runs an earlier attempt of the same job started over
// are continued (or skipped, completed), not discarded again, so preemption neither loses
// their progress nor retrains them. A second --force within one attempt (one salloc) does
// start over.
bool starts_over(bool force, const std::string& run_dir) {
  if (!force) return false;
  const auto now = slurm_attempt();
  if (!now) return true;
  std::ifstream in(run_dir + "/" + kForcedByJobFile);
  SlurmAttempt forced;
  return !(in >> forced.job >> forced.restart) || forced.job != now->job || now->restart <= forced.restart;
}

std::string run_dir_of(const config::SweepRun& run) {
  return (fs::path(run.config.run.output_dir) / run.config.run.name / run.id).string();
}

// A run directory holding a completed run or a checkpoint is skipped or continued (unless
// --force starts it over); if its config.toml says it was made with other settings, that
// would put two configurations into one result. Throws naming every such directory and
// what changed.
void refuse_changed_configs(const std::vector<config::SweepRun>& runs, int64_t index, bool force) {
  std::string conflicts;
  for (size_t i = 0; i < runs.size(); ++i) {
    if (index >= 0 && static_cast<int64_t>(i) != index) continue;
    const auto dir = run_dir_of(runs[i]);
    if (starts_over(force, dir)) continue;
    const auto stored = dir + "/config.toml";
    if (!fs::exists(stored) || (summary_status(dir) != "completed" && !train::latest_checkpoint(dir))) continue;
    const auto changes =
        config::result_changes(config::parse_toml_file(stored), toml::parse(config::to_toml(runs[i].config)));
    if (changes.empty()) continue;
    conflicts += "\n  " + stored + ":";
    for (const auto& change : changes) conflicts += "\n    " + change;
  }
  if (!conflicts.empty())
    throw std::invalid_argument(
        "these runs were made with another configuration, and continuing or skipping them would mix the two:" +
        conflicts + "\nchoose another run.output_dir or run.name, or pass --force to discard those runs");
}

}  // namespace

int main(int argc, char** argv) {
  // First: a stop (Slurm preemption) while the grid is read or MPI starts must still end in
  // kInterruptedExitCode, which requeues, rather than in the signal's default death.
  train::install_stop_handlers();
  train::keep_freed_memory_for_reuse();
  po::options_description visible(kUsage);
  std::vector<std::string> overrides;
  int64_t index = -1, threads = 0;
  std::string progress = "auto";
  visible.add_options()("help,h", "show this help")(
      "set", po::value<std::vector<std::string>>(&overrides), "override a key: --set train.lr=3e-4 (repeatable)")(
      "dry-run", "print each run's resolved config and trainable counts, then exit")(
      "list", "print the index and id of every run of the grid")("count", "print the number of runs")(
      "index", po::value<int64_t>(&index), "run only run N of the grid (a Slurm array task)")(
      "force", "discard each run's directory (completed or with checkpoints) and train it again; a requeued Slurm "
               "job's restart (same SLURM_JOB_ID, higher SLURM_RESTART_COUNT) continues the runs it started over")(
      "resume", "require a checkpoint to continue from (fail if there is none)")(
      "threads", po::value<int64_t>(&threads)->default_value(0), "CPU threads per rank (0: run.threads or cores/ranks)")(
      "progress", po::value<std::string>(&progress)->default_value("auto"),
      "bar (redrawn in place), lines (every 30 s, for logs) or auto: a bar on a terminal, "
      "lines under a launcher (mpirun gives ranks a terminal even when logging to a file)");
  po::options_description all;
  std::string config_path;
  all.add(visible).add_options()("config", po::value<std::string>(&config_path));
  po::positional_options_description positional;
  positional.add("config", 1);

  std::vector<config::SweepRun> runs;
  po::variables_map vm;
  train::RunOptions run_options;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    po::notify(vm);
    if (vm.count("help") || config_path.empty()) {
      std::cout << visible << "\n";
      return vm.count("help") ? 0 : 2;
    }
    if (threads < 0) throw std::invalid_argument("--threads " + std::to_string(threads) + ": must be >= 0");
    run_options.progress = train::parse_progress_style(progress);
    auto root = config::parse_toml_file(config_path);
    config::apply_overrides(root, overrides);
    runs = config::expand_runs(root, config_path);
    if (index >= static_cast<int64_t>(runs.size()) || (vm.count("index") && index < 0))
      throw std::invalid_argument("--index " + std::to_string(index) + " is outside the grid of " +
                                  std::to_string(runs.size()) + " runs");
    if (vm.count("count") || vm.count("list") || vm.count("dry-run")) train::restore_default_stop_actions();
    if (vm.count("count")) {
      std::cout << runs.size() << "\n";
      return 0;
    }
    if (vm.count("list")) {
      for (size_t i = 0; i < runs.size(); ++i) std::cout << i << " " << runs[i].id << "\n";
      return 0;
    }
    if (vm.count("dry-run")) {
      for (size_t i = 0; i < runs.size(); ++i)
        if (index < 0 || static_cast<int64_t>(i) == index) print_dry_run(runs[i]);
      return 0;
    }
    refuse_changed_configs(runs, index, vm.count("force") > 0);
  } catch (const std::exception& e) {
    std::cerr << "sparser_run: " << e.what() << "\n";
    return 2;
  }

  std::optional<distributed::Environment> started;
  try {
    started.emplace(argc, argv, threads > 0 ? threads : runs.front().config.run.threads);
  } catch (const std::exception& e) {
    std::cerr << "sparser_run: " << e.what() << "\n";
    return 2;
  }
  auto& env = *started;
  int exit_code = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    if (index >= 0 && static_cast<int64_t>(i) != index) continue;
    const auto& run = runs[i];
    train::RunSpec spec{run.config, run.seed, run.all_seeds, run.id, run_dir_of(run), run.group};
    train::Position reached;
    const auto session_start = std::chrono::steady_clock::now();
    try {
      // Read by every rank before the communicator (collective) is made, hence before rank 0 changes the directory.
      const bool start_over = starts_over(vm.count("force") > 0, spec.run_dir);
      if (summary_status(spec.run_dir) == "completed" && !start_over) {
        if (env.is_root())
          std::cout << "skipping " << run.id << ": completed"
                    << (vm.count("force") ? " since this job started it over" : " (rerun with --force)") << "\n";
        continue;
      }
      auto comm = distributed::make_communicator(env, train::choose_device(run.config.run.device, env));
      // One job at a time per run directory: a second one (a sweep submitted again while
      // the first still runs) would resume from the first one's checkpoints and replace its log.
      std::optional<util::FileLock> run_lock;
      if (env.is_root()) {
        fs::create_directories(spec.run_dir);
        run_lock = util::FileLock::try_acquire(spec.run_dir + "/" + kRunLockFile);
        // Left by a process killed mid-write; the lock says none is writing now.
        if (run_lock) util::remove_stale_temporaries(spec.run_dir);
      }
      if (comm->any(env.is_root() && !run_lock)) {
        if (env.is_root())
          std::cout << "skipping " << run.id << ": another process is training it (it holds " << spec.run_dir << "/"
                    << kRunLockFile << ")\n";
        continue;
      }
      if (start_over) {
        if (env.is_root()) {
          for (const auto& entry : fs::directory_iterator(spec.run_dir))
            if (entry.path().filename() != kRunLockFile) fs::remove_all(entry.path());
          if (const auto attempt = slurm_attempt())
            util::write_file_atomically(spec.run_dir + "/" + kForcedByJobFile,
                                        attempt->job + " " + std::to_string(attempt->restart) + "\n");
        }
        comm->barrier();
      }
      const bool has_checkpoint = train::latest_checkpoint(spec.run_dir).has_value();
      if (vm.count("resume") && !has_checkpoint)
        throw std::runtime_error(spec.run_dir + ": --resume, but the run has no checkpoint");
      run_options.resume = !start_over;
      exit_code = train::train_run(spec, env, *comm, run_options, reached);
      if (exit_code != 0) break;
    } catch (const std::exception& e) {
      // The failing rank records its error itself: MPI_Abort ends rank 0 wherever it is.
      // Ranks that fail together each write it; the summary keeps one of them. A refused
      // run is unharmed and keeps its summary (e.g. "interrupted").
      const bool refused = dynamic_cast<const train::RunRefused*>(&e) != nullptr;
      const auto error = (env.world_size() > 1 ? "rank " + std::to_string(env.rank()) + ": " : "") + e.what();
      reached.wall_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - session_start).count();
      try {
        fs::create_directories(spec.run_dir);
        if (!refused) train::RunSummary(spec).write("failed", reached, env.world_size(), error);
        train::append_to_train_log(spec.run_dir, (refused ? "refused: " : "failed: ") + error);
      } catch (const std::exception&) {
        // A full disk: the error still reaches stderr.
      }
      env.abort(std::string("run ") + run.id + ": " + e.what());
    }
  }
  return exit_code;
}
