# The collectives and the flat gradient buffer across real ranks (label "mpi"):
# tests/mpi/distributed_mpi_test.cpp under mpiexec with 2 and 3 ranks, as a plain
# process (an MPI singleton), and a check that Environment::abort on one rank ends the
# whole job quickly with a non-zero status.
add_executable(distributed_mpi_test ${CMAKE_CURRENT_LIST_DIR}/../mpi/distributed_mpi_test.cpp)
target_link_libraries(distributed_mpi_test PRIVATE sparser_torch GTest::gtest)
sparser_use_torch_pch(distributed_mpi_test)

foreach(ranks 2 3)
  add_test(NAME distributed_mpi_np${ranks}
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${ranks} ${SPARSER_MPIEXEC_FLAGS}
                   $<TARGET_FILE:distributed_mpi_test> ${MPIEXEC_POSTFLAGS})
  set_tests_properties(distributed_mpi_np${ranks} PROPERTIES LABELS mpi TIMEOUT 180 PROCESSORS ${ranks})
endforeach()

add_test(NAME distributed_mpi_singleton COMMAND distributed_mpi_test)
set_tests_properties(distributed_mpi_singleton PROPERTIES LABELS mpi TIMEOUT 120)

# The launch must fail (non-zero, with the aborting rank's message) within 30 s, not hang.
# The command goes to the script as one "|"-separated value; ";" would split the argument.
set(SPARSER_ABORT_LAUNCH ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 ${SPARSER_MPIEXEC_FLAGS}
    $<TARGET_FILE:distributed_mpi_test> --abort-from-last-rank)
list(JOIN SPARSER_ABORT_LAUNCH "|" SPARSER_ABORT_LAUNCH)
add_test(NAME distributed_mpi_abort_ends_the_job
         COMMAND ${CMAKE_COMMAND} "-DLAUNCH=${SPARSER_ABORT_LAUNCH}" "-DEXPECTED_OUTPUT=rank 1: aborting on purpose"
                 -DTIME_LIMIT=30 -P ${CMAKE_CURRENT_LIST_DIR}/../mpi/expect_failure.cmake)
set_tests_properties(distributed_mpi_abort_ends_the_job PROPERTIES LABELS mpi TIMEOUT 60 PROCESSORS 2)
