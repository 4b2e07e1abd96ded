#pragma once
// Collectives over NCCL for tensors on one CUDA device per rank; the host-side ones
// (scalars, barriers, consistency checks) stay on MPI. Built only with NCCL.
#if SPARSER_WITH_NCCL
#include <nccl.h>

#include "distributed/mpi_communicator.h"

namespace sparser::distributed {

class NcclCommunicator : public MpiCommunicator {
 public:
  // Collective: rank 0 creates the NCCL id and broadcasts it over MPI.
  NcclCommunicator(const Environment& env, torch::Device device);
  ~NcclCommunicator() override;

  // Tensors must be contiguous and on `device`; the operations are queued on its current
  // CUDA stream, so later work on that stream sees the result.
  void allreduce_sum_(const torch::Tensor& flat) override;
  void broadcast_(const torch::Tensor& tensor, int root) override;

 private:
  void check_tensor(const torch::Tensor& tensor, const char* operation) const;

  torch::Device device_;
  ncclComm_t nccl_comm_ = nullptr;
};

}  // namespace sparser::distributed
#endif
