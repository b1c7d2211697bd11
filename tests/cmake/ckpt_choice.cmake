# which checkpoint a run resumes from and prunes (latest, lineage), and how deep verification
# goes: branches, stray and damaged files, header tampering, per-rank load reasons with pp = 2
sp_add_script_test(mpi_ckpt_choice ckpt_choice.sh 600 MPI)
