# the growth-measurement harness (jobs/experiments/compare.sh --quick): every stage, the report,
# and a queue killed mid-run that finishes without re-running finished runs, bit for bit
sp_add_script_test(cli_harness harness.sh 900 MPI)
# the same harness on the other block kinds (G_stack, G_zero, widen_zero, Apollo, RaPTr)
foreach(kind llama bert)
  sp_add_script_test(cli_harness_${kind} harness_kind.sh 900 MPI)
  set_tests_properties(cli_harness_${kind} PROPERTIES ENVIRONMENT "${SP_MPI_ENV};SP_BLOCK=${kind}")
endforeach()
