# Writes OUT from IN with the commit being built (git describe --dirty: a "-dirty"
# suffix marks uncommitted changes). Run at every build; OUT changes only when the
# commit does, so only it recompiles.
execute_process(COMMAND git describe --always --dirty --abbrev=12 WORKING_DIRECTORY ${SOURCE_DIR}
                OUTPUT_VARIABLE SPARSER_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET
                RESULT_VARIABLE status)
if(NOT status EQUAL 0 OR NOT SPARSER_GIT_COMMIT)
  set(SPARSER_GIT_COMMIT unknown)
endif()
configure_file(${IN} ${OUT}.new @ONLY)
file(COPY_FILE ${OUT}.new ${OUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUT}.new)
