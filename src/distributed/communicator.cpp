#include "distributed/communicator.h"

#include "distributed/mpi_communicator.h"
#include "distributed/nccl_communicator.h"

namespace sparser::distributed {

std::unique_ptr<Communicator> make_communicator(const Environment& env, [[maybe_unused]] torch::Device device) {
#if SPARSER_WITH_NCCL
  if (device.is_cuda()) return std::make_unique<NcclCommunicator>(env, device);
#endif
  return std::make_unique<MpiCommunicator>(env);
}

}  // namespace sparser::distributed
