#!/usr/bin/env bash
# A real single-node Slurm: jobs/slurm/train.sbatch is submitted on a tiny config, preempted
# once with SIGUSR1 (as --signal=B:USR1 would), checkpoints, exits 3, requeues itself, and the
# requeued job finishes from the checkpoint with the same final loss and weights as an
# uninterrupted run. Exit 77 (skipped) when this machine cannot run slurmd. Slurm holds a
# requeued job back for about two minutes (its BeginTime), so this test takes ~3 minutes.
# usage: preempt.sh SPROUT_BINARY
set -uo pipefail
SPROUT=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
W=$(mktemp -d)
STATE=$(mktemp -d)
cleanup() { scancel --quiet --full "${JID:-0}" 2>/dev/null; bash "$HERE/slurm-down.sh" "$STATE"; rm -rf "$W"; }
trap cleanup EXIT
bash "$HERE/slurm-up.sh" "$STATE" || exit $?
# shellcheck disable=SC1091
. "$STATE/env.sh"
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
for i in $(seq 300); do echo "Line $i: jobs get preempted; sprout carries on."; done >"$W/c.txt"
"$SPROUT" prepare text "$W/c.txt" --out "$W/data" 2>/dev/null
cat >"$W/cfg.yaml" <<YAML
model: {vocab: 256, seq_len: 32, d_model: 32, n_head: 2, n_layer: 4}
data: {train: $W/data/train.bin, val: $W/data/val.bin}
train: {steps: 1500, global_batch: 8, micro_batch: 2, lr: 3.0e-3, warmup_steps: 10, seed: 5}
eval: {every: 0}
run: {log_every: 100}
checkpoint: {every: 20, keep: 2}
YAML
mpirun -n 2 --bind-to none "$SPROUT" train "$W/cfg.yaml" --set run.out="$W/straight" 2>"$W/straight.log" ||
  { cat "$W/straight.log"; exit 1; }
export SPROUT SPROUT_MPIRUN_FLAGS="--bind-to none"
JID=$(cd "$W" && sbatch --parsable --ntasks=2 --output="$W/job.out" "$SRC/jobs/slurm/train.sbatch" \
  "$W/cfg.yaml" --set run.out="$W/slurm")
echo "submitted job $JID"
for _ in $(seq 600); do
  [ -f "$W/slurm/ckpt/latest" ] && [ "$(cat "$W/slurm/ckpt/latest")" \> "step_00000040.h5" ] && break
  sleep 0.1
done
echo "preempting job $JID at $(cat "$W/slurm/ckpt/latest" 2>/dev/null)"
scancel --signal=USR1 --batch "$JID"
state=""
for _ in $(seq 900); do
  state=$(scontrol show job "$JID" 2>/dev/null | grep -oP 'JobState=\K\S+')
  case $state in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) break ;; esac
  sleep 0.2
done
restarts=$(scontrol show job "$JID" | grep -oP 'Restarts=\K\S+')
echo "job $JID: $state after $restarts restart(s)"
grep -a "sprout:" "$W/job.out" | grep -v "^step" | head -20
fail=0
[ "$state" = COMPLETED ] || { echo "FAIL: job ended $state"; cat "$W/job.out" | tail -20; fail=1; }
[ "${restarts:-0}" -ge 1 ] || { echo "FAIL: the job was not requeued"; fail=1; }
grep -q "resumed from" "$W/job.out" || { echo "FAIL: the requeued job did not resume"; fail=1; }
/usr/bin/python3 - "$W" <<'PY' || fail=1
import glob, json, sys, h5py, numpy as np
d = sys.argv[1]
def last_loss(n): return [json.loads(l) for l in open(f"{d}/{n}/metrics.jsonl") if '"event"' not in l][-1]
def final(n):
    f = h5py.File(sorted(glob.glob(f"{d}/{n}/ckpt/step_*.h5"))[-1], "r")
    return {k: f["model"][k][()] for k in f["model"]}
a, b = last_loss("straight"), last_loss("slurm")
same = all(np.array_equal(x, y) for x, y in zip(final("straight").values(), final("slurm").values()))
print(f"final loss: uninterrupted {a['loss']} at step {a['step']}, preempted {b['loss']} at step {b['step']}; "
      f"weights {'bit-identical' if same else 'DIFFER'}")
sys.exit(0 if a["step"] == b["step"] and a["loss"] == b["loss"] and same else 1)
PY
[ "$fail" = 0 ] && echo "slurm_preempt: 1 passed, 0 failed"
[ "$fail" = 0 ]
