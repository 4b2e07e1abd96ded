#include "train/benchmark.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <numeric>

#include <sys/resource.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <map>

#include "data/prefetcher.h"
#include "data/shard_dataset.h"
#include "methods/apply_method.h"
#include "methods/step_scope.h"
#include "methods/trainable.h"
#include "train/evaluate.h"
#include "train/loss.h"
#include "train/precision.h"
#include "train/training_step.h"

#if SPARSER_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace sparser::train {

namespace {

using Clock = std::chrono::steady_clock;

// A GPU runs kernels asynchronously: work has ended only once the device is idle.
void wait_for(torch::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

// One call of each workload in turn: the warm-up turns (`warmup`, then up to `extra_warmup`
// more while a step still page-faulted), then `repeats` timed ones.
InterleavedTiming in_turn(const std::vector<Workload>& works, torch::Device device, int64_t warmup, int64_t repeats,
                          int64_t extra_warmup) {
  InterleavedTiming timing;
  timing.seconds.resize(works.size());
  timing.page_faults.resize(works.size());
  bool settled = warmup == 0;
  while (timing.warmup < warmup || (!settled && timing.warmup < warmup + extra_warmup)) {
    settled = true;
    for (const auto& work : works) {
      const auto faults = page_faults();
      work();
      wait_for(device);
      settled = settled && page_faults() - faults <= kSettledPageFaults;
    }
    ++timing.warmup;
  }
  for (int64_t turn = 0; turn < repeats; ++turn)
    for (size_t w = 0; w < works.size(); ++w) {
      const auto faults = page_faults();
      const auto start = Clock::now();
      works[w]();
      wait_for(device);
      timing.seconds[w].push_back(std::chrono::duration<double>(Clock::now() - start).count());
      timing.page_faults[w].push_back(page_faults() - faults);
    }
  return timing;
}

Timing summarize(const std::string& name, const InterleavedTiming& turns, size_t w, torch::Device device) {
  const auto& seconds = turns.seconds[w];
  const auto& faults = turns.page_faults[w];
  Timing timing{name, median(seconds), *std::min_element(seconds.begin(), seconds.end())};
  timing.repeats = static_cast<int64_t>(seconds.size());
  timing.warmup = turns.warmup;
  timing.page_faults_per_step =
      static_cast<double>(std::accumulate(faults.begin(), faults.end(), int64_t{0})) / static_cast<double>(faults.size());
  timing.peak_rss_bytes = peak_rss_bytes();
  timing.peak_device_bytes = peak_device_bytes(device);
  return timing;
}

Timing time_repeated(const std::string& name, torch::Device device, int64_t warmup, int64_t repeats,
                     const Workload& run, int64_t extra_warmup = kMaxExtraWarmup) {
  return summarize(name, in_turn({run}, device, warmup, repeats, extra_warmup), 0, device);
}

torch::Tensor random_boxes(int64_t count, int64_t image_size, torch::Device device) {
  auto corners = torch::rand({count, 2}, device) * (image_size / 2.0);
  auto sizes = torch::rand({count, 2}, device) * (image_size / 2.0) + 8;
  return torch::cat({corners, corners + sizes}, 1);
}

}  // namespace

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

int64_t page_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

int64_t peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  return 0;
}

int64_t peak_device_bytes([[maybe_unused]] torch::Device device) {
#if SPARSER_WITH_CUDA
  // allocated_bytes[0]: the aggregate over small and large pools (StatType::AGGREGATE).
  if (device.is_cuda()) {
    const auto index = device.has_index() ? device.index() : c10::cuda::current_device();
    return c10::cuda::CUDACachingAllocator::getDeviceStats(index).allocated_bytes[0].peak;
  }
#endif
  return 0;
}

double gemm_flops_per_second(torch::Device device, bool bf16, int64_t repeats) {
  torch::NoGradGuard no_grad;
  // A 1024² product already keeps a CPU's cores busy; a GPU needs a larger one.
  const int64_t n = device.is_cuda() ? 8192 : 1024;
  const auto options = torch::TensorOptions(device).dtype(bf16 ? torch::kBFloat16 : torch::kFloat);
  const auto a = torch::randn({n, n}, options), b = torch::randn({n, n}, options);
  const auto t = time_repeated("gemm", device, 1, repeats, [&] { torch::matmul(a, b); });
  return 2.0 * n * n * n / t.median_seconds;
}

Workload encoder_forward_workload(const BenchOptions& options) {
  model::Sam sam(options.model);
  sam->eval();
  sam->to(options.device);
  const auto S = options.model.image_size;
  const auto input = torch::randn({1, 3, S, S}, options.device);
  return [sam, input, device = options.device, bf16 = options.bf16]() mutable {
    torch::NoGradGuard no_grad;
    AutocastScope autocast(device, bf16);
    sam->encode(input);
  };
}

Timing time_allreduce(distributed::Communicator& comm, int64_t values, torch::Device device, int64_t repeats) {
  const auto buffer = torch::ones({values}, device);
  comm.barrier();
  // Every rank must make the same calls: no warm-up steps beyond the two, which each rank
  // would decide from its own page faults.
  return time_repeated("allreduce", device, 2, repeats, [&] { comm.allreduce_sum_(buffer); }, 0);
}

Workload training_step_workload(const BenchOptions& options, const methods::MethodConfig& method, bool cached) {
  model::Sam sam(options.model);
  methods::apply_method(*sam, method);
  const auto device = options.device;
  const bool bf16 = options.bf16;
  sam->to(device);
  std::vector<torch::Tensor> params;
  for (const auto& [n, p] : methods::trainable_parameters(*sam)) params.push_back(p);
  std::shared_ptr<torch::optim::Adam> adam;
  if (!params.empty()) adam = std::make_shared<torch::optim::Adam>(params, torch::optim::AdamOptions(1e-5));
  const auto S = options.model.image_size;
  const auto input = torch::randn({1, 3, S, S}, device);
  TORCH_CHECK(!cached || !sam->image_encoder->trunk_requires_grad(), "the trunk trains, nothing to cache");
  torch::Tensor trunk;
  if (cached) {
    // As the cache holds it: computed once (under autocast with bf16), stored as float32.
    AutocastScope autocast(device, bf16);
    trunk = sam->image_encoder->forward_trunk(input).to(torch::kFloat);
  }
  const auto boxes = random_boxes(options.boxes, S, device);
  const auto prompts_per_pass = options.prompts_per_pass;
  const auto L = 4 * options.model.embedding_size();
  const auto targets = (torch::rand({options.boxes, 1, L, L}, device) > 0.5).to(torch::kFloat);
  return [=]() mutable {
    std::optional<torch::NoGradGuard> no_grad;
    if (!adam) no_grad.emplace();
    methods::StepScope step(*sam);
    torch::Tensor embedding;
    {
      AutocastScope autocast(device, bf16);
      embedding = cached ? sam->image_encoder->forward_neck(trunk) : sam->encode(input);
    }
    if (!adam) {
      decode_low_res(*sam, embedding, boxes, device);
      return;
    }
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
    backward_image_loss(*sam, embedding, boxes, targets, LossWeights{}, prompts_per_pass, device);
    step.finish_backward();
    adam->step();
  };
}

InterleavedTiming time_interleaved(const BenchOptions& options, const std::vector<Workload>& works) {
  const double gemm_before = gemm_flops_per_second(options.device, options.bf16);
  auto timing = in_turn(works, options.device, options.warmup, options.repeats, kMaxExtraWarmup);
  timing.gemm_flops_per_second = (gemm_before + gemm_flops_per_second(options.device, options.bf16)) / 2;
  return timing;
}

Timing time_workload(const std::string& name, const BenchOptions& options, const Workload& work) {
  const auto interleaved = time_interleaved(options, {work});
  auto timing = summarize(name, interleaved, 0, options.device);
  timing.gemm_flops_per_second = interleaved.gemm_flops_per_second;
  return timing;
}

std::unique_ptr<data::ShardDataset> open_sample_source(const std::string& manifest) {
  auto dataset = std::make_unique<data::ShardDataset>(manifest, data::ChecksumCheck::Off);
  if (dataset->size() == 0) throw std::invalid_argument(manifest + ": the split has no samples to load");
  return dataset;
}

Timing time_sample_loading(const data::ShardDataset& dataset, int64_t image_size, int64_t samples) {
  const data::PrepareOptions prepare{image_size, 4, 20, 0};
  int64_t next = 0;
  return time_repeated("sample_loading", torch::kCPU, 1, samples, [&] {
    data::prepare_sample(dataset.get(next++ % dataset.size()), prepare, 0);
  });
}

std::vector<ProfileRow> profile_workload(const Workload& work) {
  namespace profiler = torch::autograd::profiler;
  work();  // warm-up outside the profile
  profiler::enableProfilerLegacy(
      torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU, /*report_input_shapes=*/true));
  work();
  const auto threads = profiler::disableProfilerLegacy();
  // Self time: an operator's duration minus that of the operators nested in it (push and
  // pop events pair up per thread), so that the rows add up to the total.
  std::map<std::string, ProfileRow> rows;
  for (const auto& events : threads) {
    struct Open {
      const profiler::LegacyEvent* push;
      double nested_us;
    };
    std::vector<Open> open;
    for (const auto& event : events) {
      if (event.kind() == profiler::EventKind::PushRange) {
        open.push_back({&event, 0});
      } else if (event.kind() == profiler::EventKind::PopRange && !open.empty()) {
        const auto [push, nested_us] = open.back();
        open.pop_back();
        const double us = push->cpuElapsedUs(event);
        if (!open.empty()) open.back().nested_us += us;
        std::string label = push->name();
        for (const auto& shape : push->shapes()) {
          if (shape.empty()) continue;  // a scalar or a non-tensor argument
          label += " [";
          for (size_t i = 0; i < shape.size(); ++i) label += (i ? "," : "") + std::to_string(shape[i]);
          label += "]";
        }
        auto& row = rows[label];
        row.label = label;
        row.self_ms += (us - nested_us) / 1e3;
        ++row.calls;
      }
    }
  }
  std::vector<ProfileRow> sorted;
  for (auto& [label, row] : rows) sorted.push_back(std::move(row));
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.self_ms > b.self_ms; });
  return sorted;
}

}  // namespace sparser::train
