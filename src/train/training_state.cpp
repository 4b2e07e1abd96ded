#include "train/training_state.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <regex>

#include "checkpoint/state_dict.h"
#include "util/atomic_file.h"

namespace fs = std::filesystem;

namespace sparser::train {

namespace {
const std::regex kCheckpointName("step_([0-9]+)");

std::vector<std::pair<int64_t, fs::path>> complete_checkpoints(const std::string& run_dir) {
  std::vector<std::pair<int64_t, fs::path>> found;
  const auto dir = fs::path(run_dir) / "checkpoints";
  if (!fs::is_directory(dir)) return found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::smatch m;
    const auto name = entry.path().filename().string();
    if (entry.is_directory() && std::regex_match(name, m, kCheckpointName) && fs::exists(entry.path() / "state.json"))
      found.emplace_back(std::stoll(m[1]), entry.path());
  }
  std::sort(found.begin(), found.end());
  return found;
}
}  // namespace

void save_checkpoint(const std::string& run_dir, const methods::NamedTensors& trained,
                     torch::optim::Optimizer& optimizer, const Position& position) {
  char name[32];
  std::snprintf(name, sizeof name, "step_%08ld", static_cast<long>(position.global_step));
  const auto final_dir = fs::path(run_dir) / "checkpoints" / name;
  const auto tmp_dir = fs::path(final_dir.string() + ".tmp");
  fs::remove_all(tmp_dir);
  fs::create_directories(tmp_dir);
  checkpoint::write_state_dict((tmp_dir / "trained.pth").string(), trained);
  torch::save(optimizer, (tmp_dir / "optimizer.pt").string());
  const nlohmann::json state{{"epoch", position.epoch},
                             {"step_in_epoch", position.step_in_epoch},
                             {"global_step", position.global_step},
                             {"world_size", position.world_size},
                             {"trained_images", position.trained_images},
                             {"training_seconds", position.training_seconds},
                             {"wall_seconds", position.wall_seconds}};
  util::write_file_atomically((tmp_dir / "state.json").string(), state.dump(2) + "\n");
  fs::remove_all(final_dir);
  fs::rename(tmp_dir, final_dir);
  auto all = complete_checkpoints(run_dir);
  for (size_t i = 0; i + 2 < all.size(); ++i) fs::remove_all(all[i].second);
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
            state.value("wall_seconds", 0.0)};
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error((dir / "state.json").string() + ": damaged checkpoint state: " + e.what());
  }
}

}  // namespace sparser::train
