# run.precision: bf16 held to the fp32 guarantees (each skips, exit 77, where oneDNN has no native
# bf16): restart, resharding, layouts and growth once more in bf16 (SP_PRECISION, read by
# tests/cli/precision.sh), and PyTorch autocast on the same weights as sprout's bf16 loss.
foreach(t restart:restart layout_invariance:layout growth_restart:growth)
  string(REPLACE ":" ";" parts ${t})
  list(GET parts 0 name)
  list(GET parts 1 script)
  sp_add_script_test(mpi_${name}_bf16 ${script}.sh 900 MPI)
  set_tests_properties(mpi_${name}_bf16 PROPERTIES SKIP_RETURN_CODE 77
                       ENVIRONMENT "${SP_MPI_ENV};SP_PRECISION=bf16")
endforeach()
add_test(NAME torch_autocast
         COMMAND sh -c "$<TARGET_FILE:sp_parity_dump> parity_bf16.h5 bf16 && /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/torch/check_autocast.py parity_bf16.h5")
set_tests_properties(torch_autocast PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
                     ENVIRONMENT "${SP_MPI_ENV}")
