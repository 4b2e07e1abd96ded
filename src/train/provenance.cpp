#include "train/provenance.h"

#include <H5public.h>
#include <dlfcn.h>
#include <mpi.h>
#include <torch/torch.h>

#include <opencv2/core/version.hpp>

#include "util/version.h"

#if SPARSER_WITH_CUDA
#include <cuda_runtime_api.h>
#endif
#if SPARSER_WITH_NCCL
#include <nccl.h>
#endif

namespace sparser::train {

std::string blas_library() {
  if (at::globalContext().hasMKL()) return "MKL";
  // Debian's LibTorch calls libblas.so.3, whichever implementation the alternatives
  // system points it at; OpenBLAS announces itself with this symbol.
  using GetConfig = const char* (*)();
  if (auto get_config = reinterpret_cast<GetConfig>(::dlsym(RTLD_DEFAULT, "openblas_get_config")))
    return std::string("OpenBLAS ") + get_config();
  return "unknown (not MKL or OpenBLAS: matrix products may run on the slow reference BLAS)";
}

bool blas_is_optimised() {
  const auto blas = blas_library();
  return blas == "MKL" || blas.rfind("OpenBLAS", 0) == 0;
}

nlohmann::json provenance() {
  char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(mpi, &length);
  std::string mpi_version(mpi, static_cast<size_t>(length));
  mpi_version = mpi_version.substr(0, mpi_version.find_first_of(",\n"));
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
  nlohmann::json versions{{"sparser", util::kVersion},
                          {"libtorch", TORCH_VERSION},
                          {"mpi", mpi_version},
                          {"opencv", CV_VERSION},
                          {"hdf5", std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(release)},
                          {"blas", blas_library()}};
#if SPARSER_WITH_CUDA
  int cuda = 0;
  if (cudaRuntimeGetVersion(&cuda) == cudaSuccess)
    versions["cuda"] = std::to_string(cuda / 1000) + "." + std::to_string(cuda % 1000 / 10);
#endif
#if SPARSER_WITH_NCCL
  versions["nccl"] = std::to_string(NCCL_MAJOR) + "." + std::to_string(NCCL_MINOR) + "." + std::to_string(NCCL_PATCH);
#endif
  return {{"git_commit", util::kGitCommit}, {"versions", versions}};
}

}  // namespace sparser::train
