#!/usr/bin/env bash
# A bad link between the nodes slows a run but changes no result: on the two-node cluster
# (cluster.sh) a 4-rank pp = 2 run equals the one-node run bit for bit (weights, AdamW moments,
# the metrics lines as bytes less the wall-clock fields)
#  - over a link that delays and loses packets: tc netem (delay 2 ms, loss 1 %) on both ends
#    where the kernel has netem; where it has not, tc tbf (200 Mbit/s with a 32 KB queue, so
#    that bursts overflow it and packets are dropped). Either way the qdisc must report drops;
#  - across a cut: the link is taken down for 2 s mid-run and brought back up, TCP retransmits.
# usage: link.sh SPROUT_BINARY MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=cluster.sh
. "$HERE/cluster.sh"
cl_init "$@"
sed -i 's/every: 10, keep: 5/every: 0, keep: 1/' "$T/cfg.yaml"
fail=0
one() { # out [args]: 4 ranks on this machine
  local out=$1
  shift
  "${MPIEXEC[@]}" -n 4 "$SPROUT" train "$T/cfg.yaml" --set run.out="$T/$out" "$@" 2>"$T/$out.log" ||
    { echo "FAIL: run $out"; cat "$T/$out.log"; exit 1; }
}
both() { # tc arguments after "dev DEV", on both ends of the link
  ip netns exec "$CL_A" tc qdisc "$1" dev "$CL_VA" "${@:2}" && ip netns exec "$CL_B" tc qdisc "$1" dev "$CL_VB" "${@:2}"
}
drops() { # packets the qdiscs on both ends dropped
  { ip netns exec "$CL_A" tc -s qdisc show dev "$CL_VA"; ip netns exec "$CL_B" tc -s qdisc show dev "$CL_VB"; } |
    awk '/dropped/ {sub(/,/, "", $7); n += $7} END {print n + 0}'
}
one S
LONG=(--set train.steps=300 --set eval.every=0 --set run.log_every=10)
one S2 "${LONG[@]}"

# 1. a lossy link
if ip netns exec "$CL_A" tc qdisc add dev "$CL_VA" root netem delay 1ms 2>/dev/null; then
  ip netns exec "$CL_A" tc qdisc del dev "$CL_VA" root
  what="netem delay 2ms loss 1%"
  both add root netem delay 2ms loss 1%
else
  what="tbf rate 200mbit burst 16kb limit 32kb"
  echo "tc netem is not available in this kernel: emulating a lossy link with tc tbf instead"
  both add root tbf rate 200mbit burst 16kb limit 32kb
fi
cl_mpirun 4 "$SPROUT" train "$T/cfg.yaml" --set run.out="$T/L" >/dev/null 2>"$T/L.log" ||
  { echo "FAIL: the run over a lossy link ($what)"; cat "$T/L.log"; fail=1; }
lost=$(drops)
echo "$what: the link dropped $lost packets"
[ "$lost" -gt 0 ] || { echo "FAIL: $what dropped no packet"; fail=1; }
both del root

# 2. a cut: the link goes down for 2 s while the job runs
cl_mpirun 4 "$SPROUT" train "$T/cfg.yaml" "${LONG[@]}" --set run.out="$T/X" >/dev/null 2>"$T/X.log" &
job=$!
for _ in $(seq 1200); do
  [ -s "$T/X/metrics.jsonl" ] && break
  kill -0 $job 2>/dev/null || break
  sleep 0.05
done
kill -0 $job 2>/dev/null || { echo "FAIL: the job ended before the link was cut"; cat "$T/X.log"; exit 1; }
at=$(tail -1 "$T/X/metrics.jsonl" | sed 's/{"step":\([0-9]*\).*/\1/')
ip -n "$CL_A" link set "$CL_VA" down
sleep 2
kill -0 $job 2>/dev/null && cut=1 || cut=0
ip -n "$CL_A" link set "$CL_VA" up
[ "$cut" = 1 ] || { echo "FAIL: the job ended during the cut"; fail=1; }
wait $job || { echo "FAIL: the run across a cut link"; cat "$T/X.log"; fail=1; }
echo "cut the link for 2 s after step $at of 300"

/usr/bin/python3 "$HERE/compare.py" "$T" "S:L:over a lossy link" "S2:X:across a cut link" || fail=1
[ "$fail" = 0 ]
