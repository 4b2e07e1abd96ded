# The code compiles for LibTorch 2.x as well as for this machine's 1.13 (label "build"):
# every LibTorch translation unit of this build, syntax-checked against the headers of
# Debian trixie's LibTorch 2.x, which the fixture fetches into the build tree the first time;
# then the units with CUDA and NCCL code as a GPU build compiles them, where this machine
# has a CUDA toolkit with NCCL's header (skipped otherwise).
set(libtorch2_headers ${CMAKE_BINARY_DIR}/libtorch2-headers)
set(libtorch2_syntax ${CMAKE_SOURCE_DIR}/tests/scripts/libtorch2_syntax.py)
add_test(NAME build.libtorch2_headers
         COMMAND ${CMAKE_SOURCE_DIR}/scripts/fetch_libtorch2_headers.sh ${libtorch2_headers})
set_tests_properties(build.libtorch2_headers PROPERTIES LABELS build FIXTURES_SETUP libtorch2_headers)
add_test(NAME build.libtorch2_syntax COMMAND python3 ${libtorch2_syntax} ${CMAKE_BINARY_DIR} ${libtorch2_headers})
set_tests_properties(build.libtorch2_syntax PROPERTIES LABELS build TIMEOUT 1800 PROCESSORS 2
                     FIXTURES_REQUIRED libtorch2_headers)
add_test(NAME build.libtorch2_cuda_syntax
         COMMAND bash -c "python3 ${libtorch2_syntax} --cuda \"\${CUDA_HOME:-/usr/local/cuda}/include\" \
                          ${CMAKE_BINARY_DIR} ${libtorch2_headers}")
set_tests_properties(build.libtorch2_cuda_syntax PROPERTIES LABELS build TIMEOUT 600 PROCESSORS 2
                     SKIP_RETURN_CODE 77 FIXTURES_REQUIRED libtorch2_headers)
