# The BERT block and the masked-LM objective: against tests/torch/bert_ref.py (BertForMaskedLM
# semantics, float64): logits, MLM loss, every gradient and 20 AdamW steps within 1e-4 on the
# trainer's own masked batches, and the whole model's gradients against central differences.
add_test(NAME torch_parity_bert
         COMMAND sh -c "$<TARGET_FILE:sp_parity_dump> parity_bert.h5 bert && /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/torch/check_parity.py parity_bert.h5")
add_test(NAME torch_fd_check_bert
         COMMAND sh -c "$<TARGET_FILE:sp_parity_dump> parity_fd_bert.h5 bert && /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/torch/fd_check.py parity_fd_bert.h5")
set_tests_properties(torch_parity_bert torch_fd_check_bert
                     PROPERTIES TIMEOUT 300 ENVIRONMENT "${SP_MPI_ENV}")
# layout invariance, bit-exact restart and live depth growth through a pipeline change on the
# BERT block with the masked objective (SP_BLOCK=bert, read by tests/cli/kind.sh): the masks are
# keyed by (seed, step, global sample, position), so the same on 1, 2 and 4 ranks and after a
# restart, which the bit-exact comparisons of these runs show
sp_add_kind_suites(bert)
# bert-tiny learns on Brown; eval reproduces the fixed eval masking; the refusals
sp_add_script_test(cli_bert bert.sh 600)
# a bert checkpoint of a 2-stage pipeline is BertForMaskedLM's state dict: bert_ref loaded from
# /model, on the eval windows masked by bert_ref's own restatement of the masking, gets
# `sprout eval`'s loss
sp_add_script_test(ckpt_interop_bert ckpt_interop.sh 300 MPI)
set_tests_properties(ckpt_interop_bert PROPERTIES ENVIRONMENT "${SP_MPI_ENV};SP_BLOCK=bert")
