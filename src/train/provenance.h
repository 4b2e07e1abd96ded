#pragma once
// What produced a run, for its summary.json: the commit and the versions of the
// libraries that can change its numbers, and which BLAS LibTorch's matrix products use.
#include <nlohmann/json.hpp>

#include <string>

namespace sparser::train {

// {"git_commit": …, "versions": {"sparser", "libtorch", "mpi", "opencv", "hdf5", "blas", …}}
nlohmann::json provenance();

// The BLAS behind LibTorch's CPU matrix products: "MKL", "OpenBLAS <config>", or
// "unknown (…)" when neither is found (e.g. Debian's reference BLAS, ~18× slower).
std::string blas_library();
// True for MKL and OpenBLAS.
bool blas_is_optimised();

}  // namespace sparser::train
