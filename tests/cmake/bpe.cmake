# The GPT-2 tokenizer: ids equal to the package's Encoder.js on all of Brown and a UTF-8 stress
# text (node; skipped without it or the package), encoder.py where Encoder.js departs from it,
# round trips, bad vocabularies; then a GPT-2-vocabulary model: it learns, samples and
# evaluates through its checkpoint's tokenizer, and refuses data of another tokenizer.
sp_add_script_test(cli_bpe bpe.sh 300)
set_tests_properties(cli_bpe PROPERTIES SKIP_RETURN_CODE 77)
sp_add_script_test(cli_bpe_train_np2 bpe_train.sh 400 MPI)
set_tests_properties(cli_bpe_train_np2 PROPERTIES SKIP_RETURN_CODE 77)
