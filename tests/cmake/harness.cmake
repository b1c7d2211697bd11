# the growth-measurement harness (jobs/experiments/compare.sh --quick): every stage, the report,
# and a queue killed mid-run that finishes without re-running finished runs, bit for bit
sp_add_script_test(cli_harness harness.sh 900 MPI)
