# A two-node cluster on one machine (tests/cluster/cluster.sh: two network namespaces joined by
# a veth pair, Open MPI started across them through a remote shell, TCP between the nodes). As
# root only: without the right to make network namespaces the tests skip (exit 77).
#   cluster_parity     4 ranks, pp 2 across the nodes == one node, bit for bit; growth moving
#                      blocks between the nodes
#   cluster_node_loss  every process of one node killed mid-run: bounded end, a message naming
#                      the node, --resume auto bit-exact
#   cluster_link       a delaying/lossy link and a cut link change no result
foreach(t parity node_loss link)
  add_test(NAME cluster_${t} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cluster/${t}.sh
                                     $<TARGET_FILE:sprout> ${MPIEXEC_EXECUTABLE} ${MPIEXEC_PREFLAGS})
  set_tests_properties(cluster_${t} PROPERTIES TIMEOUT 300 PROCESSORS 2 SKIP_RETURN_CODE 77
                       LABELS cluster ENVIRONMENT "${SP_MPI_ENV}")
endforeach()
