#!/usr/bin/env bash
# Checkpoint write and read throughput on this machine, beside dd to the same disk.
#  - write: the checkpoint of a ~200 MB model (10 blocks of d_model 640: 49.6 M parameters, so
#    ~595 MB with the AdamW m and v) saved by 1-step training runs on R = 1, 2, 4 ranks as pipeline stages (every rank
#    writes its blocks) and on 2 data-parallel ranks (one owner writes everything); the time is
#    the trainer's own `checkpoint PATH (X s)` line: sp_ckpt_save including fsync and rename;
#  - dd: `dd if=/dev/zero bs=1M count=N conv=fsync` into the same directory, N = checkpoint MiB;
#  - read: `sprout inspect` (1 rank, reads and crc-checks all 3 copies) and `mpirun -n R sprout
#    eval --batches 1` (each rank loads its weights only, then one forward batch), timed by
#    wall clock with the page cache dropped first when we may (root); "net" subtracts the same
#    command on a tiny checkpoint (process and MPI start-up).
# Medians of REPS runs (default 3).
# usage: jobs/bench/checkpoint.sh [REPS] [DIR (default: a temp dir under $TMPDIR or /tmp)]
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${1:-3}
# shellcheck source=common.sh
. jobs/bench/common.sh
W=$(mktemp -d "${2:-${TMPDIR:-/tmp}}/sprout-ckpt-bench.XXXXXX")
trap 'rm -rf "$W" "$OUT"' EXIT
MPIRUN=(mpirun --oversubscribe --bind-to none)
if [ "$(id -u)" = 0 ]; then MPIRUN+=(--allow-run-as-root); fi

drop_caches() { # 0 if the page cache was dropped
  sync
  { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null
}
COLD=cold
drop_caches || COLD=warm

# a few hundred KB of text -> byte tokens
bench_data "$W"
DATA=(--set "data.train=$W/data/train.bin" --set "data.val=$W/data/val.bin")
BASE=(--set train.steps=1 --set train.warmup_steps=0 --set eval.every=0 --set train.global_batch=8
  --set train.micro_batch=2 "${DATA[@]}")
BIG=(--set model.n_layer=10 --set model.d_model=640 --set model.n_head=10)
TINY=(--set model.n_layer=4 --set model.d_model=64 --set model.n_head=2)

now() { date +%s.%N; }
# train np pp out shape... : one step and one checkpoint; prints the checkpoint seconds
train() {
  local np=$1 pp=$2 out=$3; shift 3
  sync
  "${MPIRUN[@]}" -n "$np" "$SPROUT" train "$CFG" "${BASE[@]}" "$@" --set parallel.pipeline="$pp" \
    --set run.out="$out" 2>&1 >/dev/null | sed -n 's/^checkpoint .* (\([0-9.]*\) s)$/\1/p'
}
# wall seconds of a command, page cache dropped first
timed() {
  drop_caches || true
  local t0; t0=$(now)
  "$@" >/dev/null 2>&1
  awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.4f\n", a - b }'
}

# tiny checkpoints (start-up baselines) and the layouts: label np pp
TINYCK=()
for np in 1 2 4; do
  train "$np" "$np" "$W/tiny$np" "${TINY[@]}" >/dev/null
  TINYCK[np]=$W/tiny$np/ckpt/step_00000001.h5
done
# Writes are measured in steady state: one run per layout saves a checkpoint after every one of
# REPS + 2 steps, keeping one, and the last REPS saves count. A long run is in that state: each
# save goes into page-cache memory that the deleted older checkpoints gave back. The first save
# of a process is reported apart: on a VM it writes into memory the guest has never touched,
# which the hypervisor backs lazily (~4x slower here); dd below is in the same state as the
# steady saves (each of its runs reuses the memory the previous one freed).
LAYOUTS=("1 1 single" "2 2 pp=2" "4 4 pp=4" "2 1 dp=2")
for l in "${LAYOUTS[@]}"; do
  read -r np pp label <<<"$l"
  echo "write $label: $((REPS + 2)) saves" >&2
  dir=$W/run_${np}_${pp}
  mapfile -t saves < <(train "$np" "$pp" "$dir" "${BIG[@]}" --set train.steps=$((REPS + 2)) \
    --set checkpoint.every=1 --set checkpoint.keep=1)
  ck=$dir/ckpt/$(cat "$dir/ckpt/latest")
  bytes=$(stat -c %s "$ck")
  for r in $(seq "$REPS"); do
    echo "read $label run $r" >&2
    ev=$(timed "${MPIRUN[@]}" -n "$np" "$SPROUT" eval "$ck" --data "$W/data/val.bin" --batches 1)
    ev0=$(timed "${MPIRUN[@]}" -n "$np" "$SPROUT" eval "${TINYCK[np]}" --data "$W/data/val.bin" \
      --batches 1)
    ins=-1 ins0=-1
    if [ "$np" = 1 ]; then
      ins=$(timed "$SPROUT" inspect "$ck")
      ins0=$(timed "$SPROUT" inspect "${TINYCK[1]}")
    fi
    echo "{\"label\":\"$label\",\"np\":$np,\"bytes\":$bytes,\"write\":${saves[$((r + 1))]},\"first\":${saves[0]},\"eval\":$ev,\"eval0\":$ev0,\"inspect\":$ins,\"inspect0\":$ins0}" >>"$OUT"
  done
  rm -rf "$dir"
done
# dd of the same size into the same directory, in the two states page-cache memory can be in on
# a VM: after 5 s idle (Linux has reported the freed pages back to the hypervisor, as happens
# between the saves of a training run, a step or more apart) and back to back (reusing what the
# previous dd freed a moment ago). The saves are compared with the first.
mib=$((bytes / 1048576))
for state in idle warm; do
  for r in $(seq "$REPS"); do
    sync
    if [ "$state" = idle ]; then sleep 5; fi
    t0=$(now)
    dd if=/dev/zero of="$W/x" bs=1M count="$mib" conv=fsync status=none
    t1=$(now)
    echo "{\"label\":\"dd-$state\",\"bytes\":$((mib * 1048576)),\"write\":$(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.4f", a - b }')}" >>"$OUT"
    rm -f "$W/x"
  done
done

/usr/bin/python3 - "$OUT" "$COLD" "$W" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cold, where = sys.argv[2], sys.argv[3]
med = lambda xs: statistics.median(xs)
by = {}
for r in rows:
    by.setdefault(r["label"], []).append(r)
dd = by.pop("dd-idle")
dd_s = med([r["write"] for r in dd])
dd_gbs = dd[0]["bytes"] / dd_s / 1e9
ddw = by.pop("dd-warm")
ddw_s = med([r["write"] for r in ddw])
ddw_gbs = dd[0]["bytes"] / ddw_s / 1e9
print(f"dd bs=1M conv=fsync, {dd[0]['bytes'] / 1e6:.0f} MB into {where}: after 5 s idle {dd_s:.3f} s, "
      f"{dd_gbs:.2f} GB/s (the saves' state: '% of dd'); back to back {ddw_s:.3f} s, {ddw_gbs:.2f} GB/s")
print(f"reads: page cache {'dropped before each read' if cold == 'cold' else 'NOT dropped (not root): reads come from the page cache'}")
print("write = sp_ckpt_save incl. fsync + rename (trainer log), median of the steady-state saves; "
      "first save = the process's first, into untouched memory; read = wall time, net = minus the "
      "same command on a tiny checkpoint")
print("eval reads the weights only (1/3 of the file) and runs one forward batch")
hdr = (f"| ranks | layout | size MB | first save s | write s | write GB/s | % of dd | % of dd back to back | inspect s (net) | "
       f"inspect GB/s (net) | eval load s (net) | eval GB/s (net) |")
print(hdr)
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for label, rs in by.items():
    b = rs[0]["bytes"]
    w = med([r["write"] for r in rs])
    ev = med([r["eval"] for r in rs])
    evn = med([r["eval"] - r["eval0"] for r in rs])
    ins = med([r["inspect"] for r in rs])
    insn = med([r["inspect"] - r["inspect0"] for r in rs])
    if rs[0]["inspect"] < 0:
        ins_s, ins_g = "–", "–"
    else:
        ins_s = f"{ins:.2f} ({insn:.2f})"
        ins_g = f"{b / ins / 1e9:.2f} ({b / max(insn, 1e-9) / 1e9:.2f})"
    print(f"| {rs[0]['np']} | {label} | {b / 1e6:.0f} | {rs[0]['first']:.3f} | {w:.3f} | {b / w / 1e9:.2f} | "
          f"{b / w / 1e9 / dd_gbs:.0%} | {b / w / 1e9 / ddw_gbs:.0%} | {ins_s} | {ins_g} | {ev:.2f} ({evn:.2f}) | "
          f"{b / 3 / ev / 1e9:.2f} ({b / 3 / max(evn, 1e-9) / 1e9:.2f}) |")
PY
