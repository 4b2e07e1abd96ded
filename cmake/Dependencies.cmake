# Third-party dependencies. Everything comes from Debian packages on the CPU build
# (scripts/install_deps.sh); a CUDA LibTorch and NCCL are picked up when present.

find_package(Torch REQUIRED)
find_package(MPI REQUIRED COMPONENTS CXX)
find_package(HDF5 REQUIRED COMPONENTS C)
find_package(tomlplusplus REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(Boost REQUIRED COMPONENTS program_options)
find_package(OpenCV REQUIRED COMPONENTS core imgproc imgcodecs)
find_package(ZLIB REQUIRED)
find_package(Threads REQUIRED)

# GPU path: a CUDA LibTorch defines torch_cuda / CUDA targets; NCCL is searched for
# only then, since a CPU LibTorch cannot hand it device tensors. NCCL_ROOT (or the
# nvidia-nccl-cu* wheel's nvidia/nccl directory next to a pip PyTorch) locates NCCL.
option(SPARSER_REQUIRE_CUDA "Fail unless the CUDA path (and NCCL) can be built" OFF)
set(SPARSER_WITH_CUDA OFF)
set(SPARSER_WITH_NCCL OFF)
if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES)
  set(SPARSER_WITH_CUDA ON)
  set(nccl_hints)
  if(DEFINED ENV{NCCL_ROOT})
    list(APPEND nccl_hints $ENV{NCCL_ROOT})
  endif()
  # A pip PyTorch ships NCCL in site-packages/nvidia/nccl, beside torch/.
  get_filename_component(torch_site_packages "${Torch_DIR}/../../../.." ABSOLUTE)
  list(APPEND nccl_hints ${torch_site_packages}/nvidia/nccl /usr/local/cuda /usr)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${nccl_hints} PATH_SUFFIXES include)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2 HINTS ${nccl_hints} PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu)
  if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    set(SPARSER_WITH_NCCL ON)
    add_library(sparser_nccl INTERFACE)
    target_include_directories(sparser_nccl INTERFACE ${NCCL_INCLUDE_DIR})
    target_link_libraries(sparser_nccl INTERFACE ${NCCL_LIBRARY})
  endif()
endif()
message(STATUS "sparser: CUDA ${SPARSER_WITH_CUDA}, NCCL ${SPARSER_WITH_NCCL}")
if(SPARSER_REQUIRE_CUDA AND NOT (SPARSER_WITH_CUDA AND SPARSER_WITH_NCCL))
  message(FATAL_ERROR "SPARSER_REQUIRE_CUDA: found CUDA LibTorch ${SPARSER_WITH_CUDA}, NCCL ${SPARSER_WITH_NCCL}; "
                      "point CMAKE_PREFIX_PATH at a CUDA LibTorch "
                      "(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)') and NCCL_ROOT at NCCL")
endif()

add_library(sparser_hdf5 INTERFACE)
target_include_directories(sparser_hdf5 INTERFACE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
target_link_libraries(sparser_hdf5 INTERFACE ${HDF5_C_LIBRARIES} ${HDF5_LIBRARIES})
target_compile_definitions(sparser_hdf5 INTERFACE ${HDF5_DEFINITIONS})
