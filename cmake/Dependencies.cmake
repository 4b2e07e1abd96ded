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
# only then, since a CPU LibTorch cannot hand it device tensors.
set(SPARSER_WITH_CUDA OFF)
set(SPARSER_WITH_NCCL OFF)
if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES)
  set(SPARSER_WITH_CUDA ON)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS $ENV{NCCL_ROOT}/include /usr/include /usr/local/cuda/include)
  find_library(NCCL_LIBRARY nccl HINTS $ENV{NCCL_ROOT}/lib /usr/lib/x86_64-linux-gnu /usr/local/cuda/lib64)
  if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    set(SPARSER_WITH_NCCL ON)
    add_library(sparser_nccl INTERFACE)
    target_include_directories(sparser_nccl INTERFACE ${NCCL_INCLUDE_DIR})
    target_link_libraries(sparser_nccl INTERFACE ${NCCL_LIBRARY})
  endif()
endif()
message(STATUS "sparser: CUDA ${SPARSER_WITH_CUDA}, NCCL ${SPARSER_WITH_NCCL}")

add_library(sparser_hdf5 INTERFACE)
target_include_directories(sparser_hdf5 INTERFACE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
target_link_libraries(sparser_hdf5 INTERFACE ${HDF5_C_LIBRARIES} ${HDF5_LIBRARIES})
target_compile_definitions(sparser_hdf5 INTERFACE ${HDF5_DEFINITIONS})
