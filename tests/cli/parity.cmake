# Numerical parity with the official implementation on every fixture directory
# that holds a config.toml, weights.pth and cases.h5.
file(GLOB fixture_configs ${SPARSER_FIXTURES_DIR}/*/config.toml)
if(NOT fixture_configs)
  message(WARNING "No reference fixtures under SPARSER_FIXTURES_DIR=${SPARSER_FIXTURES_DIR}: the parity tests are not registered")
endif()
foreach(config ${fixture_configs})
  get_filename_component(fixture_dir ${config} DIRECTORY)
  get_filename_component(fixture ${fixture_dir} NAME)
  if(EXISTS ${fixture_dir}/weights.pth AND EXISTS ${fixture_dir}/cases.h5)
    add_test(NAME parity_${fixture} COMMAND sparser_parity ${fixture_dir})
    set_tests_properties(parity_${fixture} PROPERTIES LABELS "parity")
  endif()
endforeach()
