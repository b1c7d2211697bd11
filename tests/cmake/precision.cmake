# run.precision: bf16 through oneDNN (skipped where the CPU has no native bf16)
sp_add_script_test(cli_bf16 bf16.sh 300 MPI)
set_tests_properties(cli_bf16 PROPERTIES SKIP_RETURN_CODE 77)
