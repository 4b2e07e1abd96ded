#pragma once
// The process's place in a data-parallel job: MPI is initialised on construction and
// finalised on destruction (one Environment per process; MPI cannot be re-initialised).
// Works as a plain process (an Open MPI singleton, world size 1) and under
// mpirun / mpiexec / srun.
#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace sparser::distributed {

class Environment {
 public:
  // `intra_op_threads` sets LibTorch's intra-op thread count. Precedence:
  //   1. intra_op_threads > 0 (e.g. --threads or run.threads),
  //   2. OMP_NUM_THREADS, when set to a positive integer,
  //   3. the CPUs this rank is bound to when a launcher bound it to fewer than the
  //      node's, else max(1, usable CPUs / ranks on this node), so co-located ranks do
  //      not oversubscribe the cores.
  // Throws when the launcher's process count (OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_SIZE,
  // SLURM_STEP_NUM_TASKS) differs from MPI's world size, e.g. srun without PMI support.
  Environment(int& argc, char**& argv, int64_t intra_op_threads = 0);
  // For programs without a command line to hand to MPI (tests, tools).
  explicit Environment(int64_t intra_op_threads = 0);
  // Finalises MPI. If an exception is unwinding through here on a multi-rank job, the
  // job is aborted instead: the other ranks would otherwise wait forever in a collective.
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  // Rank and rank count among the processes sharing this node's memory.
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  bool is_root() const { return rank_ == 0; }
  int64_t intra_op_threads() const { return intra_op_threads_; }
  // cuda:(local_rank % device count) when built with CUDA and a device is visible
  // (it is then also made the current CUDA device), else the CPU.
  torch::Device device() const { return device_; }

  // Prints "rank R: message" to stderr and ends every rank of the job (MPI_Abort), so
  // a failing rank never leaves the others hanging in a collective.
  [[noreturn]] void abort(const std::string& message) const;

 private:
  void initialise(int* argc, char*** argv, int64_t intra_op_threads);

  int rank_ = 0;
  int world_size_ = 1;
  int local_rank_ = 0;
  int local_size_ = 1;
  int64_t intra_op_threads_ = 1;
  torch::Device device_ = torch::kCPU;
};

}  // namespace sparser::distributed
