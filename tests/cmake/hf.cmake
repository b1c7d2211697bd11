# Hugging Face interchange (docs/interop.md): `sprout export --format hf` read back by a plain
# Python safetensors reader into the PyTorch reference (logits against sprout's, bf16 = RNE),
# config.json and tokenizer files, after training and after a growth event, under mpirun -np 2 of
# a pp = 2 checkpoint; export -> import -> eval bit for bit and train --resume; every bad import
# (one line, exit 2, no file left).
add_executable(sp_hf_logits ${CMAKE_CURRENT_SOURCE_DIR}/hf_logits.c)
target_link_libraries(sp_hf_logits PRIVATE sp_testutil)
add_test(NAME cli_hf
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/hf.sh $<TARGET_FILE:sprout>
                 $<TARGET_FILE:sp_hf_logits> ${MPIEXEC_EXECUTABLE} ${MPIEXEC_PREFLAGS})
set_tests_properties(cli_hf PROPERTIES TIMEOUT 300 PROCESSORS 2 ENVIRONMENT "${SP_MPI_ENV}")
# The same for a GPT-2-vocabulary model: vocab.json/merges.txt = the package's files byte for
# byte, logits through the PyTorch reference, import -> eval and sample bit for bit from the
# checkpoint alone, refused tokenizer files (skipped, 77, without the package)
add_test(NAME cli_hf_bpe COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/hf_bpe.sh
                                 $<TARGET_FILE:sprout> $<TARGET_FILE:sp_hf_logits>)
set_tests_properties(cli_hf_bpe PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77
                                           ENVIRONMENT "${SP_MPI_ENV}")
# The llama block (LlamaForCausalLM): export of untied, tied and grown pp = 2 (mpirun -np 2)
# llama-tiny checkpoints read back into the PyTorch reference (logits within 1e-5, bf16 RNE),
# import -> eval bit for bit, Hub-style variants, refused LlamaConfig fields and tensors
add_test(NAME cli_hf_llama
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/hf_llama.sh $<TARGET_FILE:sprout>
                 $<TARGET_FILE:sp_hf_logits> ${MPIEXEC_EXECUTABLE} ${MPIEXEC_PREFLAGS})
set_tests_properties(cli_hf_llama PROPERTIES TIMEOUT 300 PROCESSORS 2 ENVIRONMENT "${SP_MPI_ENV}")
# The bert block (BertForMaskedLM): a small bert-tiny checkpoint exported (f32, bf16) and read back
# into the PyTorch reference (the MLM head's logits within 1e-5), import -> eval bit for bit,
# older saves' buffers and decoder copies, refused BertConfig fields and tensors
add_test(NAME cli_hf_bert COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/hf_bert.sh
                                  $<TARGET_FILE:sprout> $<TARGET_FILE:sp_hf_logits>)
set_tests_properties(cli_hf_bert PROPERTIES TIMEOUT 300 ENVIRONMENT "${SP_MPI_ENV}")
