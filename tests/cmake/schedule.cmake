# learning-rate schedules: a WSD cooldown branched from a checkpoint equals the run configured
# with that end from the start
sp_add_script_test(cli_wsd_branch wsd.sh 300 MPI)
