#!/usr/bin/env bash
# Losing a node: while a 4-rank pp = 2 job runs on the two-node cluster (cluster.sh), every
# process of node B (its Open MPI daemon and ranks 2 and 3) is killed with SIGKILL. The whole
# job ends within 120 s with a non-zero status and a message that names node B, and leaves no
# process behind on node A; the next run with --resume auto on the two nodes continues from the
# newest checkpoint and ends bit-identical (weights, AdamW moments, every metrics line as bytes
# less the wall-clock fields) to an uninterrupted one-node run.
# usage: node_loss.sh SPROUT_BINARY MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=cluster.sh
. "$HERE/cluster.sh"
cl_init "$@"
L=(--set train.steps=300 --set eval.every=100 --set run.log_every=10 --set checkpoint.every=20 --set checkpoint.keep=2)
fail=0
"${MPIEXEC[@]}" -n 4 "$SPROUT" train "$T/cfg.yaml" "${L[@]}" --set run.out="$T/U" 2>"$T/U.log" ||
  { echo "FAIL: the one-node run"; cat "$T/U.log"; exit 1; }

cl_mpirun 4 "$SPROUT" train "$T/cfg.yaml" "${L[@]}" --set run.out="$T/K" --resume auto >"$T/K.log" 2>&1 &
job=$!
for _ in $(seq 1200); do
  [ -f "$T/K/ckpt/latest" ] && [ "$(cat "$T/K/ckpt/latest")" \> step_00000020.h5 ] && break
  kill -0 $job 2>/dev/null || break
  sleep 0.05
done
kill -0 $job 2>/dev/null || { echo "FAIL: the job ended before node B was killed"; cat "$T/K.log"; exit 1; }
# the ranks on node B, by the rank Open MPI gave each
ranks=$(for p in $(ip netns pids "$CL_B"); do
  tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p'
done | sort | tr '\n' ' ')
[ "$ranks" = "2 3 " ] || { echo "FAIL: node B runs ranks '$ranks', want 2 3"; fail=1; }
at=$(cat "$T/K/ckpt/latest")
ip netns pids "$CL_B" | xargs -r kill -9
t0=$SECONDS
while kill -0 $job 2>/dev/null && [ $((SECONDS - t0)) -lt 120 ]; do sleep 0.2; done
if kill -0 $job 2>/dev/null; then
  echo "FAIL: the job still runs 120 s after node B was killed"
  kill -9 $job
  fail=1
fi
wait $job
rc=$?
echo "killed node B after $at: the job ended $((SECONDS - t0)) s later with exit $rc"
[ "$rc" != 0 ] || { echo "FAIL: the job survived the loss of node B with exit 0"; fail=1; }
# Open MPI's "Remote daemon: ... on node B" or a rank's "Peer host: B"
grep -qE "(on node|host:) +$CL_B" "$T/K.log" || { echo "FAIL: no message names the lost node $CL_B"; cat "$T/K.log"; fail=1; }
grep -A12 -m1 -- "-----" "$T/K.log" | sed 's/^/  | /'
sleep 1 # mpirun has returned; give the kernel a moment to reap what it killed
left=$(ip netns pids "$CL_A" | paste -sd,)
[ -z "$left" ] || { echo "FAIL: processes left on node A: $left"; ps -o pid,args -p "$left"; fail=1; }
newest=$(cat "$T/K/ckpt/latest")

cl_mpirun 4 "$SPROUT" train "$T/cfg.yaml" "${L[@]}" --set run.out="$T/K" --resume auto 2>"$T/K2.log" >/dev/null ||
  { echo "FAIL: --resume auto on the two nodes"; cat "$T/K2.log"; exit 1; }
grep -q "resumed from .*$newest" "$T/K2.log" || { echo "FAIL: did not resume from $newest"; cat "$T/K2.log"; fail=1; }

/usr/bin/python3 "$HERE/compare.py" "$T" "U:K:killed node B, resumed" || fail=1
[ "$fail" = 0 ]
