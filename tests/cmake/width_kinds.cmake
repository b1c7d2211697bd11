# The width operators on the llama and bert block kinds: widen_direct through a pipeline change
# preserves the held-out loss, a restart after (and before) the event is bit-exact, and
# decoalesce_width then coalesce_width give the model back (tests/cli/width_kinds.sh; the maps,
# the function and the layout independence are unit_width_kinds)
foreach(kind llama bert)
  sp_add_script_test(cli_width_kinds_${kind} width_kinds.sh 600 MPI)
  set_tests_properties(cli_width_kinds_${kind} PROPERTIES ENVIRONMENT "${SP_MPI_ENV};SP_BLOCK=${kind}")
endforeach()
