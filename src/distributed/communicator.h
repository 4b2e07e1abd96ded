#pragma once
// Collective operations between the ranks of a data-parallel job. Every rank must make
// the same calls in the same order; a rank that skips one leaves the others waiting.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "distributed/environment.h"

namespace sparser::distributed {

class Communicator {
 public:
  virtual ~Communicator() = default;

  // Replaces `flat` (contiguous; its data, not the handle, is modified) with its sum
  // over ranks, in one collective call.
  virtual void allreduce_sum_(const torch::Tensor& flat) = 0;
  // Overwrites `tensor` (contiguous) on every rank with its value on `root`.
  virtual void broadcast_(const torch::Tensor& tensor, int root) = 0;
  // Every rank's `local` (lengths may differ) concatenated in rank order, on every rank.
  virtual std::vector<double> allgather_doubles(const std::vector<double>& local) = 0;
  virtual double allreduce_sum(double local) = 0;
  virtual void barrier() = 0;
  // True on every rank when `local` is true on at least one.
  virtual bool any(bool local) = 0;
  // Compares `value` (e.g. a layout hash) across ranks and, if they differ, throws on
  // every rank a std::runtime_error naming `what` and which ranks hold which value, so a
  // mismatch is reported up front instead of hanging or corrupting a later collective.
  virtual void check_consistent(uint64_t value, const std::string& what) = 0;
};

// NCCL for CUDA devices when built with it; otherwise MPI (which stages device tensors
// through host memory).
std::unique_ptr<Communicator> make_communicator(const Environment& env, torch::Device device);

}  // namespace sparser::distributed
