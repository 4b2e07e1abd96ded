#pragma once
// Collectives over MPI. Tensors are float32 or float64 for reductions (any dtype for
// broadcasts); CPU tensors are used in place, device tensors are staged through host
// memory. Works on a private duplicate of MPI_COMM_WORLD whose errors are thrown as
// exceptions naming the call and rank.
#include <mpi.h>

#include "distributed/communicator.h"

namespace sparser::distributed {

class MpiCommunicator : public Communicator {
 public:
  explicit MpiCommunicator(const Environment& env);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  void allreduce_sum_(const torch::Tensor& flat) override;
  void broadcast_(const torch::Tensor& tensor, int root) override;
  std::vector<double> allgather_doubles(const std::vector<double>& local) override;
  double allreduce_sum(double local) override;
  void barrier() override;
  bool any(bool local) override;
  void check_consistent(uint64_t value, const std::string& what) override;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int world_size_ = 1;
};

}  // namespace sparser::distributed
