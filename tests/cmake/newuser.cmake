# What a new user meets: the README's commands as written (needs SPROUT_BROWN_DIR), and the run
# directory, eval, sample, plot and --version behaviours
sp_add_script_test(cli_readme readme.sh 300 MPI)
sp_add_script_test(cli_newuser newuser.sh 300 MPI)
