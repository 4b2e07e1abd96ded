# cmake -DLAUNCH=<command, "|"-separated> -DEXPECTED_OUTPUT=<regex> -DTIME_LIMIT=<s> -P expect_failure.cmake
# Passes when the command exits with a non-zero status within TIME_LIMIT seconds and its
# output matches EXPECTED_OUTPUT: ctest's WILL_FAIL cannot tell a failure from a hang.
string(REPLACE "|" ";" command "${LAUNCH}")
execute_process(COMMAND ${command} RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE output
                TIMEOUT ${TIME_LIMIT})
message("${output}")
if(NOT status MATCHES "^[0-9]+$")
  message(FATAL_ERROR "expected a quick non-zero exit, got: ${status} (limit ${TIME_LIMIT} s)")
elseif(status EQUAL 0)
  message(FATAL_ERROR "expected a non-zero exit status, got 0")
elseif(NOT output MATCHES "${EXPECTED_OUTPUT}")
  message(FATAL_ERROR "exit status ${status}, but the output does not match \"${EXPECTED_OUTPUT}\"")
endif()
message("exit status ${status} within ${TIME_LIMIT} s, as expected")
