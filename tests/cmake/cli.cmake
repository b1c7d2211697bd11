# Command-line behaviour: bad inputs, and learning on the real corpus (needs SPROUT_BROWN_DIR)
add_test(NAME cli_bad_inputs COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/bad_inputs.sh $<TARGET_FILE:sprout>)
set_tests_properties(cli_bad_inputs PROPERTIES TIMEOUT 120 ENVIRONMENT "${SP_MPI_ENV}")
add_test(NAME cli_learning_np2
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/learning.sh $<TARGET_FILE:sprout>
                 ${MPIEXEC_EXECUTABLE} ${MPIEXEC_PREFLAGS})
set_tests_properties(cli_learning_np2 PROPERTIES TIMEOUT 600 PROCESSORS 2 ENVIRONMENT "${SP_MPI_ENV}")
find_program(SP_VALGRIND valgrind)
if(SP_VALGRIND AND NOT CMAKE_BUILD_TYPE STREQUAL "Asan")
  add_test(NAME valgrind_train COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/valgrind.sh $<TARGET_FILE:sprout>)
  set_tests_properties(valgrind_train PROPERTIES TIMEOUT 600 ENVIRONMENT "${SP_TEST_ENV}")
endif()
add_test(NAME mpi_layout_invariance
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/layout.sh $<TARGET_FILE:sprout>
                 ${MPIEXEC_EXECUTABLE} ${MPIEXEC_PREFLAGS})
set_tests_properties(mpi_layout_invariance PROPERTIES TIMEOUT 900 PROCESSORS 2 ENVIRONMENT "${SP_MPI_ENV}")
add_test(NAME mpi_bad_layouts
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/bad_layouts.sh $<TARGET_FILE:sprout>
                 ${MPIEXEC_EXECUTABLE} ${MPIEXEC_PREFLAGS})
set_tests_properties(mpi_bad_layouts PROPERTIES TIMEOUT 300 PROCESSORS 2 ENVIRONMENT "${SP_MPI_ENV}")
add_test(NAME mpi_restart
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/restart.sh $<TARGET_FILE:sprout>
                 ${MPIEXEC_EXECUTABLE} ${MPIEXEC_PREFLAGS})
set_tests_properties(mpi_restart PROPERTIES TIMEOUT 900 PROCESSORS 2 ENVIRONMENT "${SP_MPI_ENV}")
add_test(NAME ckpt_interop
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/ckpt_interop.sh $<TARGET_FILE:sprout>
                 ${MPIEXEC_EXECUTABLE} ${MPIEXEC_PREFLAGS})
set_tests_properties(ckpt_interop PROPERTIES TIMEOUT 300 PROCESSORS 2 ENVIRONMENT "${SP_MPI_ENV}")
add_test(NAME mpi_faults
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/faults.sh $<TARGET_FILE:sprout>
                 ${MPIEXEC_EXECUTABLE} ${MPIEXEC_PREFLAGS})
set_tests_properties(mpi_faults PROPERTIES TIMEOUT 600 PROCESSORS 2 ENVIRONMENT "${SP_MPI_ENV}")
# a real single-node Slurm (munge, slurmctld, slurmd started by the test): preemption + requeue
add_test(NAME slurm_preempt COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/slurm/preempt.sh $<TARGET_FILE:sprout>)
set_tests_properties(slurm_preempt PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77
                     ENVIRONMENT "${SP_MPI_ENV}")
# growth on the live job: G_stack across a layout change, restart across growth stages,
# function-preserving operators, auto timing, bad growth configs
add_test(NAME mpi_growth_restart
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/growth.sh $<TARGET_FILE:sprout>
                 ${MPIEXEC_EXECUTABLE} ${MPIEXEC_PREFLAGS})
set_tests_properties(mpi_growth_restart PROPERTIES TIMEOUT 900 PROCESSORS 2 ENVIRONMENT "${SP_MPI_ENV}")
# width/depth coalescing round trips, width splits, V-cycles on 1/2/4 ranks, restart mid-cycle
add_test(NAME mpi_vcycle
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/vcycle.sh $<TARGET_FILE:sprout>
                 ${MPIEXEC_EXECUTABLE} ${MPIEXEC_PREFLAGS})
set_tests_properties(mpi_vcycle PROPERTIES TIMEOUT 900 PROCESSORS 2 ENVIRONMENT "${SP_MPI_ENV}")
