#include "distributed/environment.h"

#include <mpi.h>
#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <thread>

#if SPARSER_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace sparser::distributed {
namespace {

// The first entry of OMP_NUM_THREADS (OpenMP allows a per-nesting-level list such as
// "8,2"), or 0 when it is unset or empty.
int64_t omp_num_threads() {
  const char* value = std::getenv("OMP_NUM_THREADS");
  if (value == nullptr || *value == '\0') return 0;
  char* end = nullptr;
  const long threads = std::strtol(value, &end, 10);
  if (threads <= 0 || (*end != '\0' && *end != ','))
    throw std::runtime_error(std::string("OMP_NUM_THREADS=\"") + value + "\" is not a positive integer");
  return threads;
}

// CPUs this process may run on (its affinity mask: a launcher's binding, a cgroup's cpuset).
int64_t usable_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

// The number of processes the launcher started, when it says so; 0 when unknown.
int64_t launcher_world_size() {
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS"}) {
    const char* value = std::getenv(variable);
    if (value && *value) return std::strtol(value, nullptr, 10);
  }
  return 0;
}

}  // namespace

Environment::Environment(int& argc, char**& argv, int64_t intra_op_threads) {
  initialise(&argc, &argv, intra_op_threads);
}

Environment::Environment(int64_t intra_op_threads) { initialise(nullptr, nullptr, intra_op_threads); }

void Environment::initialise(int* argc, char*** argv, int64_t intra_op_threads) {
  // Read before MPI starts, so a bad value is a plain exception with nothing to clean up.
  if (intra_op_threads <= 0) intra_op_threads = omp_num_threads();
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (initialised)
    throw std::runtime_error("sparser::distributed::Environment: MPI is already initialised; create one Environment per process");
  // FUNNELED: only the main thread calls MPI; the data-loading threads never do.
  int provided = MPI_THREAD_SINGLE;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  if (provided < MPI_THREAD_FUNNELED) {
    MPI_Finalize();
    throw std::runtime_error("sparser::distributed::Environment: the MPI library does not support MPI_THREAD_FUNNELED");
  }
  // MPI_COMM_WORLD keeps its default MPI_ERRORS_ARE_FATAL handler, so a failing call
  // here ends the job rather than returning.
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size_);
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &local_rank_);
  MPI_Comm_size(node, &local_size_);
  MPI_Comm_free(&node);

  // srun with an MPI lacking Slurm (PMI) support starts N independent one-rank jobs that
  // would all write the same run directories: refuse.
  if (const auto launched = launcher_world_size(); launched > 0 && launched != world_size_) {
    const std::string message = "the launcher started " + std::to_string(launched) + " processes but MPI sees " +
                                std::to_string(world_size_) +
                                " rank(s): this MPI does not work with this launcher (with srun, try --mpi=pmix "
                                "or --mpi=pmi2, see `srun --mpi=list`; or start the job with mpirun)";
    MPI_Finalize();
    throw std::runtime_error(message);
  }

  if (intra_op_threads <= 0) {
    // A launcher that bound this rank to its share of the cores leaves that share in the
    // affinity mask; an unbound rank shares the node's cores with its local peers.
    const int64_t usable = usable_cpus();
    const int64_t hardware = std::max(1u, std::thread::hardware_concurrency());
    intra_op_threads = usable < hardware ? usable : std::max<int64_t>(1, usable / local_size_);
  }
  intra_op_threads_ = intra_op_threads;
  torch::set_num_threads(static_cast<int>(intra_op_threads_));

#if SPARSER_WITH_CUDA
  if (torch::cuda::is_available()) {
    device_ = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank_ % torch::cuda::device_count()));
    c10::cuda::set_device(device_.index());
  }
#endif
}

Environment::~Environment() {
  if (std::uncaught_exceptions() > 0 && world_size_ > 1)
    abort("an exception is propagating past the MPI environment; ending every rank so none waits in a collective");
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void Environment::abort(const std::string& message) const {
  std::cout.flush();
  std::cerr << "rank " << rank_ << ": " << message << std::endl;
  MPI_Abort(MPI_COMM_WORLD, 1);
  // MPI_Abort ends the process but is not declared [[noreturn]]; this keeps the promise.
  std::_Exit(1);
}

}  // namespace sparser::distributed
