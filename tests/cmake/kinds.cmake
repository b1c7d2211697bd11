# Block kinds: the LLaMA block against tests/torch/llama_ref.py (LlamaForCausalLM semantics):
# logits, loss, every gradient and 20 AdamW steps, with an untied and a tied head, and the whole
# model's gradients against central differences of the float64 reference.
add_test(NAME torch_parity_llama
         COMMAND sh -c "$<TARGET_FILE:sp_parity_dump> parity_llama.h5 llama && /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/torch/check_parity.py parity_llama.h5")
add_test(NAME torch_parity_llama_tied
         COMMAND sh -c "$<TARGET_FILE:sp_parity_dump> parity_llama_tied.h5 llama_tied && /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/torch/check_parity.py parity_llama_tied.h5")
add_test(NAME torch_fd_check_llama
         COMMAND sh -c "$<TARGET_FILE:sp_parity_dump> parity_fd_llama.h5 llama && /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/torch/fd_check.py parity_fd_llama.h5")
set_tests_properties(torch_parity_llama torch_parity_llama_tied torch_fd_check_llama
                     PROPERTIES TIMEOUT 300 ENVIRONMENT "${SP_MPI_ENV}")
# layout invariance, bit-exact restart and live depth growth through a pipeline change once more
# on the LLaMA block (SP_BLOCK, read by tests/cli/kind.sh), with the fp32 guarantees of the gpt2
# runs (mpi_layout_invariance, mpi_restart, mpi_growth_restart)
sp_add_kind_suites(llama)
# a 2-step llama training under valgrind (no invalid access, no uninitialised read, no leak)
if(SP_VALGRIND AND NOT CMAKE_BUILD_TYPE STREQUAL "Asan")
  sp_add_script_test(valgrind_train_llama valgrind.sh 600)
  set_tests_properties(valgrind_train_llama PROPERTIES ENVIRONMENT "${SP_TEST_ENV};SP_BLOCK=llama")
endif()
# a llama checkpoint of a 2-stage pipeline is LlamaForCausalLM's state dict: llama_ref loaded from
# /model gets `sprout eval`'s loss
sp_add_script_test(ckpt_interop_llama ckpt_interop.sh 300 MPI)
set_tests_properties(ckpt_interop_llama PROPERTIES ENVIRONMENT "${SP_MPI_ENV};SP_BLOCK=llama")
