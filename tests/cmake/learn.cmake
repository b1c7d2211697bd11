# G_learn on the live job: layouts, restarts, frozen weights, the materialised slabs, its cost
# (the coefficients' gradients against finite differences are unit_learn)
sp_add_script_test(cli_learn learn.sh 600 MPI)
