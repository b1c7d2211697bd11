# PyTorch parity: sprout's logits, loss, gradients and 20 AdamW steps against tests/torch/gpt2_ref.py
add_executable(sp_parity_dump ${CMAKE_CURRENT_SOURCE_DIR}/parity_dump.c)
target_link_libraries(sp_parity_dump PRIVATE sprout_lib)
add_test(NAME torch_parity
         COMMAND sh -c "$<TARGET_FILE:sp_parity_dump> parity.h5 && /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/torch/check_parity.py parity.h5")
set_tests_properties(torch_parity PROPERTIES TIMEOUT 300 ENVIRONMENT "${SP_MPI_ENV}")
add_test(NAME torch_checker_selftest
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/torch/test_checker.sh)
set_tests_properties(torch_checker_selftest PROPERTIES TIMEOUT 300 ENVIRONMENT "${SP_MPI_ENV}")
# whole-model central differences in double (reference function, sprout's gradients)
add_test(NAME torch_fd_check
         COMMAND sh -c "$<TARGET_FILE:sp_parity_dump> parity_fd.h5 && /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/torch/fd_check.py parity_fd.h5")
set_tests_properties(torch_fd_check PROPERTIES TIMEOUT 300 ENVIRONMENT "${SP_MPI_ENV}")
