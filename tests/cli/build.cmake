# The code compiles for LibTorch 2.x as well as for this machine's 1.13 (label "build"):
# every LibTorch translation unit of this build, syntax-checked against the headers of
# Debian trixie's LibTorch 2.x, which the test fetches into the build tree the first time.
add_test(NAME build.libtorch2_syntax
         COMMAND bash -c "set -e; headers=${CMAKE_BINARY_DIR}/libtorch2-headers
           ${CMAKE_SOURCE_DIR}/scripts/fetch_libtorch2_headers.sh $headers
           python3 ${CMAKE_SOURCE_DIR}/tests/scripts/libtorch2_syntax.py ${CMAKE_BINARY_DIR} $headers")
set_tests_properties(build.libtorch2_syntax PROPERTIES LABELS build TIMEOUT 1800 PROCESSORS 2)
