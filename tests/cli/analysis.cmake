# The analysis tests (tests/core/analysis_*_test.cpp) in their own binary,
# labelled "analysis", linking sparser_analysis and no LibTorch. sparser_core lends
# the trainer's sweep expansion, so the shipped layouts are checked against the runs
# their experiment configs produce.
file(GLOB SPARSER_ANALYSIS_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/../core/analysis_*_test.cpp)
if(SPARSER_ANALYSIS_TESTS AND TARGET sparser_analysis)
  add_executable(sparser_analysis_tests ${SPARSER_ANALYSIS_TESTS})
  target_link_libraries(sparser_analysis_tests PRIVATE sparser_analysis sparser_core GTest::gtest_main)
  target_compile_definitions(sparser_analysis_tests PRIVATE
    SPARSER_BIN_DIR="${CMAKE_BINARY_DIR}/bin" SPARSER_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  add_dependencies(sparser_analysis_tests sparser_analyze)  # the command-line tests run it
  gtest_discover_tests(sparser_analysis_tests TEST_PREFIX "analysis." DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS analysis)
endif()
