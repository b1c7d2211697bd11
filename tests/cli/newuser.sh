#!/usr/bin/env bash
# What a new user meets, on a small synthetic corpus:
#  - --version names the release and the libraries;
#  - a run directory keeps config.yaml (which train accepts back) and sprout.log; metrics lines
#    carry a UTC "time" and val_windows; the log labels the set (val[16 windows]);
#  - train into a directory that holds a run: exit 2 naming it and --resume auto; --force
#    starts over and removes the old checkpoints;
#  - --resume with another train.steps: below the checkpoint's step exit 2, equal "complete",
#    above: a line saying the schedule's end moves, and the run ends at the new step;
#  - a --set that breaks a relation is named in the message (warmup_steps vs train.steps);
#  - the held-out loss of one set of weights is the same for micro_batch 2 and 4;
#  - eval: --windows N equals the training log's val on the same set, on 1 and 2 ranks; the
#    line says the set, tokens, bits per byte (= loss / ln 2) and perplexity (= e^loss); a run
#    directory stands for its latest checkpoint; bad options exit 2;
#  - sample: --top-k 1 and a tiny --top-p are greedy; the same seed repeats; bad values exit 2;
#  - plot writes a PNG; a directory without metrics exits 2;
#  - pp 2 with one micro-batch per step warns; an indivisible batch names the way out.
# usage: newuser.sh SPROUT_BINARY MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
SPROUT=$1; shift
MPIEXEC=("$@")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for i in $(seq 400); do echo "Line $i: the quick brown fox jumps over the lazy dog $((i * 13)) times."; done >"$T/c.txt"
"$SPROUT" prepare text "$T/c.txt" --out "$T/data" 2>/dev/null
cat >"$T/cfg.yaml" <<YAML
model: {vocab: 256, seq_len: 32, d_model: 32, n_head: 2, n_layer: 4}
data: {train: $T/data/train.bin, val: $T/data/val.bin}
train: {steps: 12, global_batch: 8, micro_batch: 2, lr: 3.0e-3, warmup_steps: 4}
eval: {every: 6, windows: 16}
run: {log_every: 1}
growth:
  - {at_step: 4, op: stack, factor: 2}
YAML
fail=0
say() { echo "FAIL: $*"; fail=1; }
# expect RC PATTERN LOGFILE -- command...: exit status RC and PATTERN (grep -E) in its output
expect() {
  local want=$1 pat=$2 log=$3; shift 4
  "$@" >"$log" 2>&1
  local rc=$?
  [ "$rc" = "$want" ] || { say "exit $rc, want $want: $*"; tail -5 "$log"; return; }
  [ -z "$pat" ] || grep -Eq -- "$pat" "$log" || { say "no '$pat' from: $*"; tail -5 "$log"; }
}
run_train() { "${MPIEXEC[@]}" -n "$1" "$SPROUT" train "$T/cfg.yaml" "${@:2}"; }

expect 0 "^sprout [0-9]+\.[0-9]+\.[0-9]+ \(git " "$T/v" -- "$SPROUT" --version
for lib in "MPI: " "HDF5: " "BLAS: OpenBLAS" "libcyaml: " "zlib: "; do
  grep -q "$lib" "$T/v" || say "--version lacks $lib"
done

expect 0 "val\[16 windows\] [0-9.]+" "$T/A.log" -- run_train 2 --set run.out="$T/A"
[ -s "$T/A/config.yaml" ] || say "no config.yaml"
grep -q "done: 12 steps" "$T/A/sprout.log" || say "sprout.log lacks the log"
expect 0 "done: 5 steps" "$T/C.log" -- "${MPIEXEC[@]}" -n 1 "$SPROUT" train "$T/A/config.yaml" \
  --set run.out="$T/C" --set train.steps=5
# a directory that holds a run
expect 2 "run.out $T/A already holds a run .*--resume auto.*--force" "$T/B.log" -- run_train 2 --set run.out="$T/A"
grep -q "^sprout: error: run.out" "$T/B.log" && [ "$(grep -c "already holds" "$T/B.log")" = 1 ] ||
  say "the refusal is not one line"
cp -r "$T/A" "$T/F"
expect 0 "--force: starting $T/F over \(removed 2 checkpoint file" "$T/F.log" -- run_train 2 --set run.out="$T/F" \
  --set train.steps=6 --force
[ "$(ls "$T/F/ckpt" | tr -d '\n')" = "lateststep_00000006.h5" ] || say "--force left $(ls "$T/F/ckpt")"
[ "$(grep -c '^{"step":1,' "$T/F/metrics.jsonl")" = 1 ] && ! grep -q '"step":12' "$T/F/metrics.jsonl" ||
  say "--force kept the old metrics"
expect 2 "--force starts the run over and --resume continues it" "$T/FR.log" -- run_train 1 \
  --set run.out="$T/A" --force --resume auto
# train.steps changed on a resume
expect 2 "step_00000012.h5 is at step 12 but train.steps = 8 ends before it" "$T/R1.log" -- \
  run_train 1 --set run.out="$T/A" --resume auto --set train.steps=8
expect 0 "the run is complete at train.steps = 12; nothing to train" "$T/R2.log" -- \
  run_train 1 --set run.out="$T/A" --resume auto
expect 0 "train.steps changed from 12 \(the checkpoint's config\) to 16: the learning-rate schedule now ends at step 16 instead of 12" \
  "$T/R3.log" -- run_train 1 --set run.out="$T/A" --resume auto --set train.steps=16
grep -q "done: 16 steps" "$T/R3.log" || say "the extended run does not end at 16"
# the override named in a relation error
expect 2 "train.warmup_steps: 4 is greater than train.steps = 3 \(after --set train.steps=3" "$T/W.log" -- \
  "$SPROUT" train "$T/cfg.yaml" --set train.steps=3 --set run.out="$T/W"
# the validation set does not depend on micro_batch: the held-out loss at the growth event
# (step 4) of a run with micro_batch 2, and of its step-4 checkpoint resumed with micro_batch 4
expect 0 "" "$T/M2.log" -- run_train 2 --set run.out="$T/M2" --set train.steps=6 --set checkpoint.every=4
expect 0 "" "$T/M4.log" -- run_train 1 --set run.out="$T/M4" --set train.steps=6 --set train.micro_batch=4 \
  --resume "$T/M2/ckpt/step_00000004.h5"
# eval: the training log's set, on 1 and 2 ranks
E1=$("$SPROUT" eval "$T/A" --data "$T/data/val.bin" --windows 16)
E2=$("${MPIEXEC[@]}" -n 2 "$SPROUT" eval "$T/A/ckpt/step_00000016.h5" --data "$T/data/val.bin" --windows 16 2>/dev/null)
EA=$("$SPROUT" eval "$T/A" --data "$T/data/val.bin")
/usr/bin/python3 - "$T/A/metrics.jsonl" "$E1" "$E2" "$EA" "$T" <<'PY' || fail=1
import json, math, re, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
bad = 0
def check(c, m):
    global bad
    if not c: bad += 1; print("FAIL:", m)
steps = [r for r in rows if "event" not in r]
check(all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["time"]) for r in rows), "time field")
vals = [r for r in steps if "val_loss" in r]
check(vals and all(r["val_windows"] == 16 for r in vals), "val_windows")
pat = (r"val_loss (\S+) set (val\[16 windows\]|val\[all\]) windows (\d+) tokens (\d+) "
       r"bits_per_byte (\S+) perplexity (\S+) val_loss_se (\S+) loss_per_byte (\S+) bytes (\d+)")
m1, m2, ma = (re.fullmatch(pat, s.strip()) for s in sys.argv[2:5])
check(m1 and m2 and ma, f"eval lines: {sys.argv[2:5]}")
if m1 and m2 and ma:
    l1, l2 = float(m1[1]), float(m2[1])
    check(m1[2] == "val[16 windows]" and m1[3] == "16" and m1[4] == str(16 * 32), "eval set")
    check(abs(l1 - vals[-1]["val_loss"]) < 1e-5 * l1, f"eval {l1} != logged {vals[-1]['val_loss']}")
    check(abs(l1 - l2) < 1e-5 * l1, f"eval on 1 rank {l1} != on 2 ranks {l2}")
    check(abs(float(m1[5]) - l1 / math.log(2)) < 1e-4 and abs(float(m1[6]) - math.exp(l1)) < 1e-3 * math.exp(l1), "bpb/ppl")
    check(ma[2] == "val[all]" and int(ma[3]) > 16, "eval of the whole file")
    # the standard error: bootstrap over windows, the same on any layout and in the training log
    se1, se2, sea = float(m1[7]), float(m2[7]), float(ma[7])
    check(0 < se1 < l1 and abs(se1 - se2) <= 1e-4 * se1, f"eval SE {se1} (1 rank) vs {se2} (2 ranks)")
    check(abs(se1 - vals[-1]["val_loss_se"]) <= 1e-4 * se1, f"eval SE {se1} != logged {vals[-1].get('val_loss_se')}")
    check(0 < sea < se1, f"SE of the whole file {sea} not below the 16-window set's {se1}")
g2, g4 = ([json.loads(l) for l in open(f"{sys.argv[5]}/{n}/metrics.jsonl") if '"growth"' in l][0]
          for n in ("M2", "M4"))
check(abs(g2["loss_before"] - g4["loss_before"]) < 1e-5 * g2["loss_before"],
      f"held-out loss depends on micro_batch: {g2['loss_before']} vs {g4['loss_before']}")
print(f"eval: {bad} failed")
sys.exit(1 if bad else 0)
PY
expect 2 "--windows and --batches exclude each other" "$T/e1" -- "$SPROUT" eval "$T/A" --data "$T/data/val.bin" --windows 2 --batches 1
expect 2 "$T/data: a directory without ckpt/latest" "$T/e2" -- "$SPROUT" eval "$T/data" --data "$T/data/val.bin"
# sampling
G=$("$SPROUT" sample "$T/A" --prompt "The " --tokens 40 --temperature 0)
K=$("$SPROUT" sample "$T/A" --prompt "The " --tokens 40 --top-k 1 --seed 5)
P=$("$SPROUT" sample "$T/A" --prompt "The " --tokens 40 --top-p 1e-9 --seed 6)
S1=$("$SPROUT" sample "$T/A" --prompt "The " --tokens 40 --top-k 20 --top-p 0.9 --seed 7)
S2=$("$SPROUT" sample "$T/A" --prompt "The " --tokens 40 --top-k 20 --top-p 0.9 --seed 7)
[ "$G" = "$K" ] || say "top-k 1 is not greedy: '$K' vs '$G'"
[ "$G" = "$P" ] || say "a tiny top-p is not greedy: '$P' vs '$G'"
[ "$S1" = "$S2" ] && [ ${#S1} -ge 44 ] || say "the same seed gives other text"
expect 2 "--top-p P takes a number in \(0, 1\]" "$T/s1" -- "$SPROUT" sample "$T/A" --top-p 0
expect 2 "--top-k K" "$T/s2" -- "$SPROUT" sample "$T/A" --top-k -1
# plot
expect 0 "$T/A/plot.png" "$T/p" -- "$SPROUT" plot "$T/A"
[ "$(head -c 4 "$T/A/plot.png" | tail -c 3)" = PNG ] || say "plot.png is not a PNG"
expect 2 "$T/data/metrics.jsonl: .*a run directory" "$T/p2" -- "$SPROUT" plot "$T/data"
# a pipeline with nothing to overlap
expect 0 "warning: pp 2 with 1 micro-batch per step" "$T/pp.log" -- run_train 2 --set run.out="$T/PP" \
  --set parallel.pipeline=2 --set train.global_batch=2 --set train.steps=2 --set train.warmup_steps=1 \
  --set growth=[]
# an indivisible batch says how to get out of it
expect 2 "train.global_batch = 8 is not divisible by data-parallel ranks \(2\) x train.micro_batch \(8\) on pp 1: lower train.micro_batch" \
  "$T/div.log" -- run_train 2 --set run.out="$T/DIV" --set train.micro_batch=8 --set parallel.pipeline=1
echo "newuser: $([ $fail = 0 ] && echo "all passed" || echo "some failed")"
exit $fail
