#!/bin/sh
# Runs a command on one node of the test cluster: node.sh NODE CMD [ARGS...]
# A node is a network namespace (made by cluster.sh) plus, per process tree entered here, its
# own host name and its own /dev/shm, as on a separate machine. Open MPI names shared-memory
# segments and session directories after the host name, so two "nodes" that shared one name
# would overwrite each other's segments (vader crashes in mca_btl_vader_poll_handle_frag).
# The filesystem is otherwise shared, like an NFS home on a real cluster.
n=$1
shift
exec ip netns exec "$n" unshare --uts --mount --propagation private /bin/sh -c \
  'echo "$0" >/proc/sys/kernel/hostname && mount -t tmpfs -o mode=1777 tmpfs /dev/shm && exec "$@"' \
  "$n" "$@"
