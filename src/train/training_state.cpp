#include "train/training_state.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "checkpoint/state_dict.h"
#include "util/atomic_file.h"

namespace fs = std::filesystem;

namespace sparser::train {

namespace {
const std::regex kCheckpointName("step_([0-9]+)");
// Where a save builds a checkpoint, and where it moves one aside before removing it: a
// kill leaves such directories behind, which no search for checkpoints takes.
const std::regex kUnfinishedName("step_[0-9]+\\.(tmp|old)");
const char* const kCheckpointFiles[] = {"trained.pth", "optimizer.pt", "state.json"};

std::vector<std::pair<int64_t, fs::path>> complete_checkpoints(const std::string& run_dir) {
  std::vector<std::pair<int64_t, fs::path>> found;
  const auto dir = fs::path(run_dir) / "checkpoints";
  if (!fs::is_directory(dir)) return found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::smatch m;
    const auto name = entry.path().filename().string();
    // All files, not just state.json (written last): earlier versions removed a checkpoint
    // in place, and a kill during that left some of its files.
    const auto complete = [&] {
      for (const auto* file : kCheckpointFiles)
        if (!fs::exists(entry.path() / file)) return false;
      return true;
    };
    if (entry.is_directory() && std::regex_match(name, m, kCheckpointName) && complete())
      found.emplace_back(std::stoll(m[1]), entry.path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

fs::path aside_name(const fs::path& dir) { return dir.string() + ".old"; }

// Renames `dir` aside before removing it, so that a kill never leaves part of a
// checkpoint under a name that resume would take.
void remove_checkpoint(const fs::path& dir) {
  fs::rename(dir, aside_name(dir));
  fs::remove_all(aside_name(dir));
}
}  // namespace

void save_checkpoint(const std::string& run_dir, const methods::NamedTensors& trained,
                     torch::optim::Optimizer& optimizer, const Position& position) {
  char name[32];
  std::snprintf(name, sizeof name, "step_%08ld", static_cast<long>(position.global_step));
  const auto checkpoints = fs::path(run_dir) / "checkpoints";
  const auto final_dir = checkpoints / name;
  const auto tmp_dir = fs::path(final_dir.string() + ".tmp");
  fs::create_directories(checkpoints);
  std::vector<fs::path> unfinished;
  for (const auto& entry : fs::directory_iterator(checkpoints))
    if (std::regex_match(entry.path().filename().string(), kUnfinishedName)) unfinished.push_back(entry.path());
  for (const auto& dir : unfinished) fs::remove_all(dir);
  fs::create_directories(tmp_dir);
  try {
    checkpoint::write_state_dict((tmp_dir / "trained.pth").string(), trained);
    // Into memory first: LibTorch's file writer throws from its destructor when a write
    // fails (a full disk), which ends the process; the atomic writer reports it.
    std::ostringstream optimizer_state;
    torch::save(optimizer, optimizer_state);
    util::write_file_atomically((tmp_dir / "optimizer.pt").string(), optimizer_state.str());
    const nlohmann::json state{{"epoch", position.epoch},
                               {"step_in_epoch", position.step_in_epoch},
                               {"global_step", position.global_step},
                               {"world_size", position.world_size},
                               {"trained_images", position.trained_images},
                               {"training_seconds", position.training_seconds},
                               {"wall_seconds", position.wall_seconds},
                               {"train_data", position.train_data}};
    util::write_file_atomically((tmp_dir / "state.json").string(), state.dump(2) + "\n");
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(tmp_dir, ignored);
    throw;
  }
  // Saved twice at one step (a stop right after a periodic checkpoint): the old one is
  // renamed aside and removed once the new one is in place.
  if (fs::exists(final_dir)) fs::rename(final_dir, aside_name(final_dir));
  fs::rename(tmp_dir, final_dir);
  fs::remove_all(aside_name(final_dir));
  auto all = complete_checkpoints(run_dir);
  for (size_t i = 0; i + 2 < all.size(); ++i) remove_checkpoint(all[i].second);
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir) {
  const auto all = complete_checkpoints(run_dir);
  if (all.empty()) return std::nullopt;
  return all.back().second.string();
}

Position load_checkpoint(const std::string& checkpoint_dir, model::SamImpl& sam, torch::optim::Optimizer& optimizer) {
  const auto dir = fs::path(checkpoint_dir);
  const auto trained = (dir / "trained.pth").string();
  methods::load_delta(sam, checkpoint::read_state_dict(trained), trained);
  torch::load(optimizer, (dir / "optimizer.pt").string());
  std::ifstream in(dir / "state.json");
  nlohmann::json state;
  try {
    in >> state;
    return {state.at("epoch").get<int64_t>(),          state.at("step_in_epoch").get<int64_t>(),
            state.at("global_step").get<int64_t>(),    state.at("world_size").get<int64_t>(),
            state.value("trained_images", int64_t{0}), state.value("training_seconds", 0.0),
            state.value("wall_seconds", 0.0),          state.value("train_data", "")};
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error((dir / "state.json").string() + ": damaged checkpoint state: " + e.what());
  }
}

}  // namespace sparser::train
