#include "train/benchmark.h"

#include <algorithm>
#include <chrono>
#include <fstream>

#include <torch/csrc/autograd/profiler_legacy.h>

#include <nlohmann/json.hpp>

#include <map>
#include <sstream>

#include "data/prefetcher.h"
#include "data/shard_dataset.h"
#include "methods/apply_method.h"
#include "methods/trainable.h"
#include "train/loss.h"

namespace sparser::train {

namespace {

using Clock = std::chrono::steady_clock;

template <typename F>
Timing time_repeated(const std::string& name, int64_t warmup, int64_t repeats, F&& run) {
  for (int64_t i = 0; i < warmup; ++i) run();
  std::vector<double> seconds;
  for (int64_t i = 0; i < repeats; ++i) {
    const auto start = Clock::now();
    run();
    seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  return {name, seconds[seconds.size() / 2], seconds.front(), repeats, peak_rss_bytes()};
}

torch::Tensor random_boxes(int64_t count, int64_t image_size) {
  auto corners = torch::rand({count, 2}) * (image_size / 2.0);
  auto sizes = torch::rand({count, 2}) * (image_size / 2.0) + 8;
  return torch::cat({corners, corners + sizes}, 1);
}

}  // namespace

int64_t peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  return 0;
}

double gemm_flops_per_second(int64_t n, int64_t repeats) {
  torch::NoGradGuard no_grad;
  const auto a = torch::randn({n, n}), b = torch::randn({n, n});
  const auto t = time_repeated("gemm", 1, repeats, [&] { torch::matmul(a, b); });
  return 2.0 * n * n * n / t.median_seconds;
}

Timing time_encoder_forward(const BenchOptions& options) {
  model::Sam sam(options.model);
  sam->eval();
  torch::NoGradGuard no_grad;
  const auto S = options.model.image_size;
  const auto input = torch::randn({1, 3, S, S});
  return time_repeated("encoder_forward", options.warmup, options.repeats, [&] { sam->encode(input); });
}

Timing time_allreduce(distributed::Communicator& comm, int64_t values, int64_t repeats) {
  const auto buffer = torch::ones({values});
  comm.barrier();
  return time_repeated("allreduce", 2, repeats, [&] { comm.allreduce_mean_(buffer); });
}

Timing time_training_step(const BenchOptions& options, const methods::MethodConfig& method, const std::string& name,
                          bool cached) {
  model::Sam sam(options.model);
  methods::apply_method(*sam, method);
  std::vector<torch::Tensor> params;
  for (const auto& [n, p] : methods::trainable_parameters(*sam)) params.push_back(p);
  std::optional<torch::optim::Adam> adam;
  if (!params.empty()) adam.emplace(params, torch::optim::AdamOptions(1e-5));
  const auto S = options.model.image_size;
  const auto input = torch::randn({1, 3, S, S});
  TORCH_CHECK(!cached || !sam->image_encoder->trunk_requires_grad(), name, ": the trunk trains, nothing to cache");
  const auto trunk = cached ? sam->image_encoder->forward_trunk(input) : torch::Tensor();
  model::Prompts prompts;
  prompts.boxes = random_boxes(options.boxes, S);
  const auto L = 4 * options.model.embedding_size();
  const auto targets = (torch::rand({options.boxes, 1, L, L}) > 0.5).to(torch::kFloat);
  const bool training = adam.has_value();
  return time_repeated(name, options.warmup, options.repeats, [&] {
    std::optional<torch::NoGradGuard> no_grad;
    if (!training) no_grad.emplace();
    const auto embeddings = cached ? sam->image_encoder->forward_neck(trunk) : sam->encode(input);
    const auto out = sam->decode(embeddings, prompts, false);
    if (!training) return;
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
    segmentation_loss(out.low_res_logits, targets, LossWeights{}).total.backward();
    adam->step();
  });
}

Timing time_sample_loading(const std::string& manifest, int64_t image_size, int64_t samples) {
  const data::ShardDataset dataset(manifest);
  const data::PrepareOptions prepare{image_size, 4, 20, 0};
  int64_t next = 0;
  return time_repeated("sample_loading", 1, std::max<int64_t>(samples, 1), [&] {
    data::prepare_sample(dataset.get(next++ % dataset.size()), prepare, 0);
  });
}

std::vector<std::pair<std::string, double>> profile_encoder_forward(const BenchOptions& options) {
  model::Sam sam(options.model);
  sam->eval();
  torch::NoGradGuard no_grad;
  const auto input = torch::randn({1, 3, options.model.image_size, options.model.image_size});
  sam->encode(input);  // warm-up outside the profile
  std::stringstream trace;
  {
    torch::autograd::profiler::RecordProfile profile(trace);
    sam->encode(input);
  }
  std::map<std::string, double> milliseconds;
  for (const auto& event : nlohmann::json::parse(trace.str(), nullptr, false))
    if (event.is_object() && event.contains("dur")) milliseconds[event.value("name", "?")] += event["dur"].get<double>() / 1e3;
  std::vector<std::pair<std::string, double>> sorted(milliseconds.begin(), milliseconds.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return sorted;
}

}  // namespace sparser::train
