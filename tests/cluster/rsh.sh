#!/bin/sh
# The remote shell Open MPI calls to start its daemon on the other node (--mca plm_rsh_agent):
# called as "rsh.sh HOST COMMAND-LINE...", like ssh, it runs the command line on node HOST.
h=$1
shift
exec "$(dirname "$0")/node.sh" "$h" /bin/sh -c "$*"
