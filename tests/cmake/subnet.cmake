# Subnetwork methods (train.subnet: apollo | raptr): plans on 1, 2 and 4 ranks and across
# restarts, bit-for-bit equality with plain training when nothing is skipped or shared, bad
# configs; the LVPS distribution and the plans themselves are checked by unit_subnet.
sp_add_script_test(mpi_subnet subnet.sh 900 MPI)
# weight sharing and skipping against the float64 PyTorch reference, the unshared copy and
# finite differences (tests/torch/check_plan.py)
foreach(method apollo raptr)
  add_test(NAME torch_plan_${method}
           COMMAND sh -c "$<TARGET_FILE:sp_parity_dump> plan_${method}.h5 ${method} && /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/torch/check_plan.py plan_${method}.h5")
  set_tests_properties(torch_plan_${method} PROPERTIES TIMEOUT 300 ENVIRONMENT "${SP_MPI_ENV}")
endforeach()
