#pragma once
// Recomputes every output stored in a reference fixture (config.toml, weights.pth,
// cases.h5, as described in shared/fixtures/README.md) and compares it with ours.
#include <string>
#include <vector>

namespace sparser::model {

struct ParityResult {
  std::string output;  // e.g. "image_embeddings" or "cases/box_single/mask_logits"
  double max_abs_error;
};

// Throws std::runtime_error naming the file and object if the fixture is malformed.
std::vector<ParityResult> run_fixture_parity(const std::string& fixture_dir);

}  // namespace sparser::model
