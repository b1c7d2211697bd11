# The GPT-2 tokenizer: ids equal to the package's Encoder.js on all of Brown and a UTF-8 stress
# text (node; skipped without it or the package), encoder.py where Encoder.js departs from it,
# round trips, bad vocabularies; then a GPT-2-vocabulary model: it learns, samples and
# evaluates through its checkpoint's tokenizer, and refuses data of another tokenizer.
# sprout with its own copy of bpe.c in which every word of more than one byte takes the
# O(m log m) merge path (SP_BPE_LONG_WORD=1; the copy takes precedence over the library's), so
# that the comparisons check that path on every word too
add_executable(sprout_bpe_long ${CMAKE_SOURCE_DIR}/src/cli/main.c ${CMAKE_SOURCE_DIR}/src/io/bpe.c)
target_compile_definitions(sprout_bpe_long PRIVATE SP_BPE_LONG_WORD=1)
target_link_libraries(sprout_bpe_long PRIVATE sprout_lib)
add_test(NAME cli_bpe COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/bpe.sh $<TARGET_FILE:sprout>
                              $<TARGET_FILE:sprout_bpe_long>)
set_tests_properties(cli_bpe PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77 ENVIRONMENT "${SP_MPI_ENV}")
sp_add_script_test(cli_bpe_train_np2 bpe_train.sh 400 MPI)
set_tests_properties(cli_bpe_train_np2 PROPERTIES SKIP_RETURN_CODE 77)
