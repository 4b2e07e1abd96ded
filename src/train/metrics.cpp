#include "train/metrics.h"

namespace sparser::train {

std::vector<InstanceScores> score_instances(const torch::Tensor& predicted, const torch::Tensor& truth) {
  TORCH_CHECK(predicted.sizes() == truth.sizes(), "metrics: prediction ", predicted.sizes(), " vs truth ",
              truth.sizes());
  const auto p = predicted.to(torch::kBool).flatten(1);
  const auto g = truth.to(torch::kBool).flatten(1);
  const auto tp = (p & g).sum(1).to(torch::kDouble);
  const auto fp = (p & ~g).sum(1).to(torch::kDouble);
  const auto fn = (~p & g).sum(1).to(torch::kDouble);
  std::vector<InstanceScores> scores;
  for (int64_t i = 0; i < p.size(0); ++i) {
    const double t = tp[i].item<double>(), f_p = fp[i].item<double>(), f_n = fn[i].item<double>();
    const double union_ = t + f_p + f_n;
    scores.push_back(union_ == 0 ? InstanceScores{1.0, 1.0} : InstanceScores{t / union_, 2 * t / (2 * t + f_p + f_n)});
  }
  return scores;
}

}  // namespace sparser::train
