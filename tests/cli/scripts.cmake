# The launch and Slurm scripts (label "scripts"): tests/scripts/*.sh run them with fake
# srun/sbatch/scontrol/mpirun that record their arguments, so no Slurm is needed. The
# tests that size arrays from --count, and the real localhost mpirun launch, get the
# sparser_run binary as their argument.
if(TARGET sparser_run)
  set(SPARSER_RUN_FOR_SCRIPTS $<TARGET_FILE:sparser_run>)
else()
  set(SPARSER_RUN_FOR_SCRIPTS ${CMAKE_BINARY_DIR}/bin/sparser_run)
endif()

foreach(script syntax help submit_sweep sweep_sbatch train_sbatch single_node multi_node demo)
  add_test(NAME scripts.${script}
           COMMAND bash ${CMAKE_SOURCE_DIR}/tests/scripts/${script}.sh ${SPARSER_RUN_FOR_SCRIPTS})
  set_tests_properties(scripts.${script} PROPERTIES LABELS scripts TIMEOUT 120)
endforeach()
set_tests_properties(scripts.single_node scripts.multi_node PROPERTIES PROCESSORS 2)
