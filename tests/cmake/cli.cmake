# bad inputs, and learning on the real corpus (needs SPROUT_BROWN_DIR)
sp_add_script_test(cli_bad_inputs bad_inputs.sh 120)
sp_add_script_test(cli_learning_np2 learning.sh 600 MPI)
find_program(SP_VALGRIND valgrind)
if(SP_VALGRIND AND NOT CMAKE_BUILD_TYPE STREQUAL "Asan")
  sp_add_script_test(valgrind_train valgrind.sh 600)
  set_tests_properties(valgrind_train PROPERTIES ENVIRONMENT "${SP_TEST_ENV}")
endif()
sp_add_script_test(mpi_layout_invariance layout.sh 900 MPI)
sp_add_script_test(mpi_bad_layouts bad_layouts.sh 300 MPI)
sp_add_script_test(mpi_restart restart.sh 900 MPI)
sp_add_script_test(ckpt_interop ckpt_interop.sh 300 MPI)
sp_add_script_test(mpi_faults faults.sh 600 MPI)
# a real single-node Slurm (munge, slurmctld, slurmd started by the test): preemption + requeue
add_test(NAME slurm_preempt COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/slurm/preempt.sh $<TARGET_FILE:sprout>)
set_tests_properties(slurm_preempt PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77
                     ENVIRONMENT "${SP_MPI_ENV}")
# growth on the live job: G_stack across a layout change, restart across growth stages,
# function-preserving operators, auto timing, bad growth configs
sp_add_script_test(mpi_growth_restart growth.sh 900 MPI)
# width/depth coalescing round trips, width splits, V-cycles on 1/2/4 ranks, restart mid-cycle
sp_add_script_test(mpi_vcycle vcycle.sh 900 MPI)
