#include "distributed/nccl_communicator.h"

#if SPARSER_WITH_NCCL
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <stdexcept>

// ncclBfloat16 arrived in NCCL 2.10.
#define SPARSER_NCCL_HAS_BF16 (NCCL_VERSION_CODE >= NCCL_VERSION(2, 10, 0))

namespace sparser::distributed {
namespace {

void check_nccl(ncclResult_t result, const char* call, int rank) {
  if (result == ncclSuccess) return;
  throw std::runtime_error(std::string("NcclCommunicator: ") + call + " failed on rank " + std::to_string(rank) + ": " +
                           ncclGetErrorString(result));
}

ncclDataType_t reduction_type(const torch::Tensor& tensor) {
  switch (tensor.scalar_type()) {
    case torch::kFloat32: return ncclFloat32;
    case torch::kFloat64: return ncclFloat64;
    case torch::kFloat16: return ncclFloat16;
#if SPARSER_NCCL_HAS_BF16
    case torch::kBFloat16: return ncclBfloat16;
#endif
    default:
      throw std::invalid_argument(std::string("NcclCommunicator::allreduce_sum_: dtype ") +
                                  c10::toString(tensor.scalar_type()) + " is not supported");
  }
}

}  // namespace

NcclCommunicator::NcclCommunicator(const Environment& env, torch::Device device) : MpiCommunicator(env), device_(device) {
  if (!device_.is_cuda() || !device_.has_index())
    throw std::invalid_argument("NcclCommunicator needs an indexed CUDA device, got " + device_.str());
  ncclUniqueId id;
  if (rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId", rank());
  MpiCommunicator::broadcast_(torch::from_blob(&id, {static_cast<int64_t>(sizeof(id))}, torch::kUInt8), 0);
  const c10::cuda::CUDAGuard guard(device_);
  check_nccl(ncclCommInitRank(&nccl_comm_, world_size(), id, rank()), "ncclCommInitRank", rank());
}

NcclCommunicator::~NcclCommunicator() { ncclCommDestroy(nccl_comm_); }

void NcclCommunicator::check_tensor(const torch::Tensor& tensor, const char* operation) const {
  const std::string where = std::string("NcclCommunicator::") + operation + ": ";
  if (!tensor.defined()) throw std::invalid_argument(where + "undefined tensor");
  if (tensor.device() != device_ || !tensor.is_contiguous())
    throw std::invalid_argument(where + "expects a contiguous tensor on " + device_.str() + ", got a " +
                                (tensor.is_contiguous() ? "contiguous" : "non-contiguous") + " one on " +
                                tensor.device().str());
}

void NcclCommunicator::allreduce_sum_(const torch::Tensor& flat) {
  check_tensor(flat, "allreduce_sum_");
  const c10::cuda::CUDAGuard guard(device_);
  const auto stream = c10::cuda::getCurrentCUDAStream(device_.index()).stream();
  void* data = flat.data_ptr();
  const auto count = static_cast<size_t>(flat.numel());
  check_nccl(ncclAllReduce(data, data, count, reduction_type(flat), ncclSum, nccl_comm_, stream), "ncclAllReduce", rank());
}

void NcclCommunicator::broadcast_(const torch::Tensor& tensor, int root) {
  check_tensor(tensor, "broadcast_");
  if (root < 0 || root >= world_size())
    throw std::invalid_argument("NcclCommunicator::broadcast_: root " + std::to_string(root) + " is not a rank of a world of " +
                                std::to_string(world_size()));
  const c10::cuda::CUDAGuard guard(device_);
  const auto stream = c10::cuda::getCurrentCUDAStream(device_.index()).stream();
  // As bytes, so any dtype can be broadcast.
  void* data = tensor.data_ptr();
  const auto bytes = static_cast<size_t>(tensor.numel()) * tensor.element_size();
  check_nccl(ncclBroadcast(data, data, bytes, ncclUint8, root, nccl_comm_, stream), "ncclBroadcast", rank());
}

}  // namespace sparser::distributed
#endif
