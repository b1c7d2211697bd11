#!/usr/bin/env bash
# The cost of a growth event beside a training step, at GPT-2-small width: a G_stack event
# 6 -> 12 blocks of configs/bench-gpt2-small.yaml's shape (d_model 768, 12 heads: 42.5 M -> 85 M
# parameters), on 2 ranks from pp 1 x dp 2 to pp 2 x dp 1, so every block is both copied locally
# and sent to the other rank. Each run trains K steps, grows, then trains S more; it prints the
# event's own time (`event_ms` of the metrics line: the slowest rank's sp_trainer_grow, without
# the evaluations around it), the bytes moved, the median step time of the grown model and the
# ratio. Medians over REPS runs (default 3).
# usage: jobs/bench/growth.sh [REPS]   (env: SEQ, BATCH, MICRO, STEPS_AFTER, PRECISION; LOG: a file
# to append the runs' logs to)
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${1:-3}
CFG=configs/bench-gpt2-small.yaml
# shellcheck source=common.sh
. jobs/bench/common.sh
W=$(mktemp -d "${TMPDIR:-/tmp}/sprout-growth-bench.XXXXXX")
trap 'rm -rf "$W" "$OUT"' EXIT
MPIRUN=(mpirun --oversubscribe --bind-to none)
if [ "$(id -u)" = 0 ]; then MPIRUN+=(--allow-run-as-root); fi
SEQ=${SEQ:-256} BATCH=${BATCH:-8} MICRO=${MICRO:-4} K=2 STEPS_AFTER=${STEPS_AFTER:-4}

bench_data "$W"
# the config's model is the shape after growth; the run starts at half its depth
{
  sed '/^growth:/,$d' "$CFG"
  echo "growth:"
  echo "  - {at_step: $K, op: stack, factor: 2, pipeline: 2}"
} >"$W/cfg.yaml"
for r in $(seq "$REPS"); do
  rm -rf "$W/run"
  "${MPIRUN[@]}" -n 2 "$SPROUT" train "$W/cfg.yaml" --set data.train="$W/data/train.bin" \
    --set data.val="$W/data/val.bin" --set model.seq_len="$SEQ" --set train.global_batch="$BATCH" \
    --set train.micro_batch="$MICRO" --set train.steps=$((K + STEPS_AFTER)) \
    --set train.warmup_steps=0 --set eval.every=0 --set eval.batches=1 --set checkpoint.every=0 \
    --set parallel.pipeline=1 --set run.log_every=1 --set run.precision="${PRECISION:-fp32}" \
    --set run.out="$W/run" >"$W/log" 2>&1 || { cat "$W/log"; exit 1; }
  if [ -n "${LOG:-}" ]; then cat "$W/log" >>"$LOG"; fi
  /usr/bin/python3 - "$W/run/metrics.jsonl" "$K" >>"$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ev = next(r for r in rows if r.get("event") == "growth")
# the first step after the event warms the grown model's caches: not counted
steps = [r["ms"] for r in rows if "ms" in r and r.get("step", 0) > int(sys.argv[2]) + 1]
print(ev["event_ms"], ev["bytes_moved"], statistics.median(steps))
PY
done
/usr/bin/python3 - "$OUT" "$SEQ" "$BATCH" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1])]
ev = statistics.median(r[0] for r in rows)
mb = statistics.median(r[1] for r in rows) / 1e6
st = statistics.median(r[2] for r in rows)
print(f"G_stack 6 -> 12 blocks (d 768, seq {sys.argv[2]}, batch {sys.argv[3]}), pp 1 x dp 2 -> "
      f"pp 2 x dp 1, {len(rows)} runs: event {ev:.0f} ms, {mb:.0f} MB moved, step {st:.0f} ms "
      f"(event/step {ev / st:.2f})")
print("runs (event ms, step ms):", ", ".join(f"{r[0]:.0f}/{r[2]:.0f}" for r in rows))
PY
