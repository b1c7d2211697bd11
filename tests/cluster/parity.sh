#!/usr/bin/env bash
# Two nodes, one result: on the two-node cluster (cluster.sh) a 4-rank pp = 2 run, ranks 0-1 on
# node A and 2-3 on node B, equals the same run on one node over shared memory bit for bit
# (weights, AdamW moments, the metrics lines as bytes less the wall-clock fields), with shared
# memory inside a node (tcp,vader,self) and with TCP only (tcp,self); the data-parallel
# all-reduce crosses the link (rank r is stage r % pp of replica r / pp), so node B receives at
# least half the model per step. A growth event from pp 4 x dp 1 to pp 2 x dp 2 (4 -> 8 blocks)
# moves blocks across nodes both ways (rank 0 on A builds its stage from old blocks 2 and 3,
# held on B) and equals the one-node run bit for bit.
# usage: parity.sh SPROUT_BINARY MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=cluster.sh
. "$HERE/cluster.sh"
cl_init "$@"
sed 's/n_layer: 4/n_layer: 8/' "$T/cfg.yaml" >"$T/grow.yaml"
cat >>"$T/grow.yaml" <<YAML
growth:
  - {at_step: 10, op: stack, factor: 2, pipeline: 2}
YAML
fail=0
one() { # out config pp: 4 ranks on this machine
  "${MPIEXEC[@]}" -n 4 "$SPROUT" train "$T/$2.yaml" --set run.out="$T/$1" --set parallel.pipeline="$3" \
    2>"$T/$1.log" || { echo "FAIL: run $1"; cat "$T/$1.log"; exit 1; }
}
two() { # out config pp: 4 ranks on the two nodes
  cl_mpirun 4 --display-map "$SPROUT" train "$T/$2.yaml" --set run.out="$T/$1" --set parallel.pipeline="$3" \
    >"$T/$1.map" 2>"$T/$1.log" || { echo "FAIL: run $1 on two nodes"; cat "$T/$1.map" "$T/$1.log"; exit 1; }
  # Open MPI's job map: "Data for node: NAME ..." followed by "... Process rank: R ..." lines
  local got
  got=$(awk '/Data for node:/ {n = $4} /Process rank:/ {for (i = 1; i < NF; i++) if ($i == "rank:") print $(i + 1), n}' \
    "$T/$1.map" | sort -un | tr '\n' ' ')
  [ "$got" = "0 $CL_A 1 $CL_A 2 $CL_B 3 $CL_B " ] || { echo "FAIL: $1 placed ranks as: $got"; fail=1; }
}
one S cfg 2
rx0=$(cl_rx)
two C cfg 2
rx=$(($(cl_rx) - rx0))
CL_BTL=tcp,self two CT cfg 2
one GS grow 4
two GC grow 4
# the layouts sprout prints: old blocks 2 and 3 on node B, their copies (stack: new block j is old
# block j mod 4) in stage 0 on ranks 0 (node A) and 2 (node B), and the reverse for blocks 0, 1
for want in "stage 2: blocks 2..2 on rank(s) 2" "stage 3: blocks 3..3 + final LN and tied head on rank(s) 3" \
  "growth\[0\] before step 10: stack x2, 4 -> 8 blocks, .* pp 4 x dp 1 -> pp 2 x dp 2" \
  "stage 0: blocks 0..3 + embedding on rank(s) 0,2" "stage 1: blocks 4..7 + final LN and tied head on rank(s) 1,3"; do
  grep -q "$want" "$T/GC.log" || { echo "FAIL: GC does not log '$want'"; cat "$T/GC.log"; fail=1; }
done
# half the model per step: 4 bytes a parameter, the count from the checkpoint
params=$(/usr/bin/python3 -c 'import sys, h5py; f = h5py.File(sys.argv[1], "r"); print(sum(f["model"][k].size for k in f["model"]))' \
  "$T/S/ckpt/step_00000020.h5")
echo "node B received $rx bytes during run C (the model: $((4 * params)) bytes)"
[ "$rx" -ge $((20 * 4 * params / 2)) ] || { echo "FAIL: run C sent too little over the link"; fail=1; }
/usr/bin/python3 "$HERE/compare.py" "$T" "S:C:pp 2 x dp 2, shared memory inside a node" \
  "S:CT:pp 2 x dp 2, TCP only" "GS:GC:growth from pp 4 x dp 1 to pp 2 x dp 2" || fail=1
[ "$fail" = 0 ]
