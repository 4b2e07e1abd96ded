# Numerical parity with the official implementation on every fixture directory
# that holds a config.toml, weights.pth and cases.h5.
file(GLOB fixture_configs ${SPARSER_FIXTURES_DIR}/*/config.toml)
foreach(config ${fixture_configs})
  get_filename_component(fixture_dir ${config} DIRECTORY)
  get_filename_component(fixture ${fixture_dir} NAME)
  if(EXISTS ${fixture_dir}/weights.pth AND EXISTS ${fixture_dir}/cases.h5)
    add_test(NAME parity_${fixture} COMMAND sparser_parity ${fixture_dir})
    set_tests_properties(parity_${fixture} PROPERTIES LABELS "parity")
  endif()
endforeach()
