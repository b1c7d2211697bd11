# shellcheck shell=bash
# A two-node test cluster on one machine, sourced by the tests/cluster/*.sh tests (as root).
#
# The nodes are two network namespaces, spcl-PID-a and spcl-PID-b (PID: the test's), joined by a
# veth pair with the addresses CL_IP_A and CL_IP_B, which exist only inside them: no traffic can
# leave the machine. Each node sees its own name in its /etc/hosts (ip netns exec mounts
# /etc/netns/NODE/hosts over it), and node.sh gives every process tree started on a node that
# host name and its own /dev/shm. mpirun runs on node A and starts its daemon on node B through
# rsh.sh; ranks on different nodes talk TCP over the veth pair, ranks on one node shared memory
# (or TCP too, with CL_BTL=tcp,self). The filesystem is shared, like an NFS home.
#
#   cl_up          set up the cluster in the scratch dir T (exit 77 if no network namespace can
#                  be made: not root); first removes what a crashed earlier run left behind
#   cl_down        tear it down (call it from the EXIT trap)
#   cl_mpirun NP ARGS...   mpirun -n NP across both nodes (MPIEXEC: the array of the mpiexec
#                  command and its flags, as CTest passes them), slots 2 per node
#   cl_rx          bytes node B has received over the link so far
#   cl_init SPROUT MPIEXEC [FLAGS...]   what every test starts with: SPROUT, MPIEXEC, a scratch
#                  dir T removed on exit, the cluster, a corpus and T/cfg.yaml (4 ranks, pp 2)
# Variables set by cl_up: CL_A, CL_B (node names), CL_VA, CL_VB (their link ends), CL_HOSTS.

CL_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CL_NET=10.231.0.0/24
CL_IP_A=10.231.0.1
CL_IP_B=10.231.0.2
CL_A=
CL_B=

cl_del() { # NAME: kill what still runs on the node, delete it and its hosts file
  ip netns pids "$1" 2>/dev/null | xargs -r kill -9 2>/dev/null
  ip netns del "$1" 2>/dev/null
  rm -rf "/etc/netns/$1"
}

cl_reap() { # what a crashed run left: its namespaces, an unmoved link end, hosts files
  local n p
  for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^spcl-[0-9]+-[ab]$'); do
    p=${n#spcl-}
    p=${p%-*}
    if [ "$p" = $$ ] || ! kill -0 "$p" 2>/dev/null; then
      echo "cluster: removing node $n left by an earlier run"
      cl_del "$n"
    fi
  done
  for n in $(ip -o link show 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); print $2}' | grep -E '^spcl[0-9]+[ab]$'); do
    p=${n#spcl}
    p=${p%?}
    { [ "$p" = $$ ] || ! kill -0 "$p" 2>/dev/null; } && ip link del "$n" 2>/dev/null
  done
  for n in /etc/netns/spcl-*; do
    [ -d "$n" ] && ! ip netns list | grep -q "^${n##*/}\b" && rm -rf "$n"
  done
  rmdir /etc/netns 2>/dev/null
  return 0
}

cl_up() {
  local n e
  for n in ip unshare; do
    command -v $n >/dev/null || { echo "FAIL: '$n' is not installed (iproute2, util-linux)"; exit 1; }
  done
  cl_reap
  CL_A=spcl-$$-a CL_B=spcl-$$-b CL_VA=spcl$$a CL_VB=spcl$$b
  if ! e=$(ip netns add "$CL_A" 2>&1); then
    CL_A=
    echo "SKIP: cannot create a network namespace ($e): the two-node tests need root"
    exit 77
  fi
  ip netns add "$CL_B" &&
    ip -n "$CL_A" link set lo up && ip -n "$CL_B" link set lo up &&
    ip link add "$CL_VA" type veth peer name "$CL_VB" &&
    ip link set "$CL_VA" netns "$CL_A" && ip link set "$CL_VB" netns "$CL_B" &&
    ip -n "$CL_A" addr add "$CL_IP_A/24" dev "$CL_VA" && ip -n "$CL_B" addr add "$CL_IP_B/24" dev "$CL_VB" &&
    ip -n "$CL_A" link set "$CL_VA" up && ip -n "$CL_B" link set "$CL_VB" up ||
    { echo "FAIL: could not set up the two nodes and their link"; exit 1; }
  for n in "$CL_A" "$CL_B"; do
    mkdir -p "/etc/netns/$n"
    { cat /etc/hosts 2>/dev/null; printf '%s %s\n%s %s\n' "$CL_IP_A" "$CL_A" "$CL_IP_B" "$CL_B"; } >"/etc/netns/$n/hosts"
  done
  CL_HOSTS=${T:?}/hosts
  printf '%s slots=2\n%s slots=2\n' "$CL_A" "$CL_B" >"$CL_HOSTS"
  echo "cluster: nodes $CL_A ($CL_IP_A) and $CL_B ($CL_IP_B)"
}

cl_down() {
  [ -n "$CL_A" ] || return 0
  cl_del "$CL_A"
  cl_del "$CL_B"
  rmdir /etc/netns 2>/dev/null
  CL_A=
  return 0
}

cl_mpirun() { # NP ARGS...
  local np=$1 v x=()
  shift
  # A real cluster's launcher forwards only the environment it is told to (rsh.sh would pass
  # all). The hostfile gives each node 2 slots, so Open MPI does not know that the two nodes
  # share this machine's cores: without yield_when_idle, ranks that wait on TCP spin and
  # starve the others (a 100-step run: 3.6 s instead of 0.7 s on 2 cores).
  for v in OPENBLAS_NUM_THREADS HDF5_USE_FILE_LOCKING ASAN_OPTIONS UBSAN_OPTIONS; do
    [ -n "${!v:-}" ] && x+=(-x "$v")
  done
  "$CL_HERE/node.sh" "$CL_A" "${MPIEXEC[@]}" -n "$np" --hostfile "$CL_HOSTS" \
    --mca plm_rsh_agent "$CL_HERE/rsh.sh" --mca plm_rsh_no_tree_spawn 1 \
    --mca btl "${CL_BTL:-tcp,vader,self}" --mca btl_tcp_if_include "$CL_NET" \
    --mca oob_tcp_if_include "$CL_NET" --mca mpi_yield_when_idle 1 "${x[@]}" "$@"
}

cl_rx() { ip netns exec "$CL_B" cat "/sys/class/net/$CL_VB/statistics/rx_bytes"; }

cl_init() {
  SPROUT=$1
  shift
  MPIEXEC=("$@")
  T=$(mktemp -d)
  trap 'cl_down; rm -rf "$T"' EXIT
  trap 'exit 1' INT TERM
  cl_up
  local i
  for i in $(seq 300); do echo "Line $i: two nodes, one result, $((i * 11)) words."; done >"$T/c.txt"
  "$SPROUT" prepare text "$T/c.txt" --out "$T/data" 2>/dev/null
  cat >"$T/cfg.yaml" <<YAML
model: {vocab: 256, seq_len: 32, d_model: 32, n_head: 2, n_layer: 4}
data: {train: $T/data/train.bin, val: $T/data/val.bin}
train: {steps: 20, global_batch: 8, micro_batch: 2, lr: 3.0e-3, warmup_steps: 4, seed: 5}
eval: {every: 10, batches: 2}
run: {log_every: 1}
checkpoint: {every: 10, keep: 5}
parallel: {pipeline: 2}
YAML
}
