# sprout eval of a grown checkpoint keeps the training schedule (at_tokens events, ramps, masks)
sp_add_script_test(cli_eval_schedule eval_schedule.sh 300 MPI)
