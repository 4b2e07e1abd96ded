#include "distributed/mpi_communicator.h"

#include <algorithm>
#include <climits>
#include <map>
#include <sstream>
#include <stdexcept>

namespace sparser::distributed {
namespace {

// MPI counts are ints, and some transports mishandle single messages near 2 GiB, so
// large tensors go in pieces of at most this many bytes.
constexpr int64_t kMaxMessageBytes = int64_t{1} << 30;

void check_mpi(int result, const char* call, int rank) {
  if (result == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(result, text, &length);
  throw std::runtime_error(std::string("MpiCommunicator: ") + call + " failed on rank " + std::to_string(rank) + ": " +
                           std::string(text, static_cast<size_t>(length)));
}

void check_contiguous(const torch::Tensor& tensor, const char* operation) {
  if (!tensor.defined()) throw std::invalid_argument(std::string("MpiCommunicator::") + operation + ": undefined tensor");
  if (!tensor.is_contiguous())
    throw std::invalid_argument(std::string("MpiCommunicator::") + operation + ": the tensor must be contiguous");
}

MPI_Datatype reduction_type(const torch::Tensor& tensor) {
  switch (tensor.scalar_type()) {
    case torch::kFloat32: return MPI_FLOAT;
    case torch::kFloat64: return MPI_DOUBLE;
    default:
      throw std::invalid_argument(std::string("MpiCommunicator::allreduce_sum_: dtype ") +
                                  c10::toString(tensor.scalar_type()) + " is not supported (float32 or float64)");
  }
}

// "ranks 0, 2 have 0x1f; rank 1 has 0x2e"
std::string describe_values_by_rank(const std::vector<uint64_t>& values) {
  std::map<uint64_t, std::vector<size_t>> ranks_by_value;
  for (size_t r = 0; r < values.size(); ++r) ranks_by_value[values[r]].push_back(r);
  std::ostringstream out;
  bool first_group = true;
  for (const auto& [value, ranks] : ranks_by_value) {
    out << (first_group ? "" : "; ") << (ranks.size() == 1 ? "rank " : "ranks ");
    for (size_t i = 0; i < ranks.size(); ++i) out << (i ? ", " : "") << ranks[i];
    out << (ranks.size() == 1 ? " has 0x" : " have 0x") << std::hex << value << std::dec;
    first_group = false;
  }
  return out.str();
}

}  // namespace

MpiCommunicator::MpiCommunicator(const Environment& env) : rank_(env.rank()), world_size_(env.world_size()) {
  // A private communicator keeps these messages apart from any other MPI traffic, and
  // lets errors come back as exceptions instead of MPI_COMM_WORLD's immediate abort.
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup", rank_);
  check_mpi(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler", rank_);
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Comm_free(&comm_);
}

void MpiCommunicator::allreduce_sum_(const torch::Tensor& flat) {
  check_contiguous(flat, "allreduce_sum_");
  if (!flat.device().is_cpu()) {
    const auto host = flat.cpu();
    allreduce_sum_(host);
    flat.copy_(host);
    return;
  }
  const MPI_Datatype type = reduction_type(flat);
  const int64_t max_count = kMaxMessageBytes / flat.element_size();
  auto* data = static_cast<char*>(flat.data_ptr());
  for (int64_t done = 0; done < flat.numel();) {
    const int64_t count = std::min(max_count, flat.numel() - done);
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, data + done * flat.element_size(), static_cast<int>(count), type, MPI_SUM, comm_),
              "MPI_Allreduce", rank_);
    done += count;
  }
}

void MpiCommunicator::broadcast_(const torch::Tensor& tensor, int root) {
  check_contiguous(tensor, "broadcast_");
  if (root < 0 || root >= world_size_)
    throw std::invalid_argument("MpiCommunicator::broadcast_: root " + std::to_string(root) + " is not a rank of a world of " +
                                std::to_string(world_size_));
  if (!tensor.device().is_cpu()) {
    const auto host = tensor.cpu();
    broadcast_(host, root);
    tensor.copy_(host);
    return;
  }
  const int64_t bytes = tensor.numel() * static_cast<int64_t>(tensor.element_size());
  auto* data = static_cast<char*>(tensor.data_ptr());
  for (int64_t done = 0; done < bytes;) {
    const int64_t count = std::min(kMaxMessageBytes, bytes - done);
    check_mpi(MPI_Bcast(data + done, static_cast<int>(count), MPI_BYTE, root, comm_), "MPI_Bcast", rank_);
    done += count;
  }
}

std::vector<double> MpiCommunicator::allgather_doubles(const std::vector<double>& local) {
  if (local.size() > static_cast<size_t>(INT_MAX))
    throw std::invalid_argument("MpiCommunicator::allgather_doubles: " + std::to_string(local.size()) +
                                " values on rank " + std::to_string(rank_) + " exceed MPI's int count");
  const int local_count = static_cast<int>(local.size());
  std::vector<int> counts(static_cast<size_t>(world_size_));
  check_mpi(MPI_Allgather(&local_count, 1, MPI_INT, counts.data(), 1, MPI_INT, comm_), "MPI_Allgather", rank_);
  std::vector<int> offsets(counts.size());
  int64_t total = 0;
  for (size_t r = 0; r < counts.size(); ++r) {
    offsets[r] = static_cast<int>(total);
    total += counts[r];
    if (total > INT_MAX)
      throw std::runtime_error("MpiCommunicator::allgather_doubles: more values in all than MPI's int displacements reach");
  }
  std::vector<double> all(static_cast<size_t>(total));
  check_mpi(MPI_Allgatherv(local.data(), local_count, MPI_DOUBLE, all.data(), counts.data(), offsets.data(), MPI_DOUBLE, comm_),
            "MPI_Allgatherv", rank_);
  return all;
}

double MpiCommunicator::allreduce_sum(double local) {
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, &local, 1, MPI_DOUBLE, MPI_SUM, comm_), "MPI_Allreduce", rank_);
  return local;
}

void MpiCommunicator::barrier() { check_mpi(MPI_Barrier(comm_), "MPI_Barrier", rank_); }

bool MpiCommunicator::any(bool local) {
  int flag = local ? 1 : 0;
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, &flag, 1, MPI_INT, MPI_LOR, comm_), "MPI_Allreduce", rank_);
  return flag != 0;
}

void MpiCommunicator::check_consistent(uint64_t value, const std::string& what) {
  std::vector<uint64_t> values(static_cast<size_t>(world_size_));
  check_mpi(MPI_Allgather(&value, 1, MPI_UINT64_T, values.data(), 1, MPI_UINT64_T, comm_), "MPI_Allgather", rank_);
  if (std::all_of(values.begin(), values.end(), [&](uint64_t v) { return v == values.front(); })) return;
  throw std::runtime_error("ranks disagree on " + what + " (seen on rank " + std::to_string(rank_) +
                           "): " + describe_values_by_rank(values));
}

}  // namespace sparser::distributed
