# inputs that used to hang or crash (FIFOs, data changed under a run, huge integers, no-op growth
# lists, NaN options, a shared run.out) and messages that name the key, file or argument
sp_add_script_test(cli_hostile_inputs hostile_inputs.sh 600)
