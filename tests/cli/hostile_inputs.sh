#!/usr/bin/env bash
# Inputs that used to hang or crash, and messages that must name the thing (docs/testing.md,
# "Fault matrix"): each case ends with its exit status, at most one line of stderr naming the
# file, key, argument or field, within a timeout, and never on a signal.
# usage: hostile_inputs.sh SPROUT_BINARY
set -u
SPROUT=$1
T=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
. "$(dirname "$0")/expect.sh"
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# waits up to $2 s for the command $1 (a string) to succeed
wait_for() { local i; for i in $(seq $(($2 * 10))); do eval "$1" && return 0; sleep 0.1; done; return 1; }

for i in $(seq 300); do echo "Line $i: a hostile corpus, with words and digits $((i * 13))."; done >"$T/c.txt"
"$SPROUT" prepare text "$T/c.txt" --out "$T/data" 2>/dev/null || { echo "prepare failed"; exit 1; }
cat >"$T/base.yaml" <<YAML
model: {vocab: 256, seq_len: 32, d_model: 32, n_head: 2, n_layer: 2}
data: {train: $T/data/train.bin, val: $T/data/val.bin}
train: {steps: 4, global_batch: 4, micro_batch: 2, warmup_steps: 1}
eval: {every: 0, batches: 1}
run: {log_every: 1, out: $T/run}
YAML
B=$T/base.yaml
cp "$B" "$T/ev.yaml"
printf 'growth:\n  - {at_step: 2, op: stack, factor: 2}\n' >>"$T/ev.yaml"
sed -i 's/n_layer: 2/n_layer: 4/' "$T/ev.yaml"

# --- data files that are not token files: refused at once, not blocked on ---
mkfifo "$T/fifo"
expect 2 "data.train: $T/fifo: is a FIFO" -- "$SPROUT" train "$B" --set data.train="$T/fifo"
expect 2 "data.val: $T/data: is a directory" -- "$SPROUT" train "$B" --set data.val="$T/data"
expect 2 "data.train: /dev/zero: is a character device" -- "$SPROUT" train "$B" --set data.train=/dev/zero

# --- seq_len beyond the data is a data error, before any memory is counted or allocated ---
expect 2 "train.bin: [0-9]+ tokens are too few for model.seq_len = 100000" -- \
  "$SPROUT" train "$B" --set model.seq_len=100000
# --- activations count in parallel.max_stage_mib, for auto and a given pipeline alike ---
big=(--set model.seq_len=4096 --set train.micro_batch=64 --set train.global_batch=64 --set data.val="$T/data/train.bin")
expect 2 "parallel.pipeline = auto: .*max_stage_mib = 1024 \(the smallest needs [0-9]+ MiB" -- \
  "$SPROUT" train "$B" "${big[@]}"
expect 2 "parallel.pipeline = 1: a stage needs [0-9]+ MiB .*max_stage_mib = 1024" -- \
  "$SPROUT" train "$B" "${big[@]}" --set parallel.pipeline=1

# --- a failed allocation ends with one line and status 1, not a crash on MPI requests ---
# (the message buffers of 16384 x 4096 tokens are 8 GiB: above the address-space limit, while
# the model and start-up fit far below it; ASan reserves terabytes of shadow, so not there)
if ldd "$SPROUT" 2>/dev/null | grep -q libasan; then
  echo "skip: allocation failure under ulimit -v (AddressSanitizer build)"
else
  expect 1 "out of memory for the message buffers of stage 0" -- bash -c 'ulimit -v 3000000; exec "$@"' _ \
    "$SPROUT" train "$B" --set model.seq_len=4096 --set train.micro_batch=16384 \
    --set train.global_batch=16384 --set data.val="$T/data/train.bin" --set parallel.max_stage_mib=2147483647
fi

# --- every integer key refuses a value above 2^31 instead of truncating it ---
for k in model.vocab model.seq_len model.d_model model.n_head model.d_ff model.n_layer train.steps \
  train.global_batch train.micro_batch train.warmup_steps eval.every eval.batches run.threads \
  run.log_every parallel.max_stage_mib checkpoint.every checkpoint.keep vcycle.levels \
  vcycle.down_steps vcycle.bottom_steps; do
  expect 2 "$k: 4294967328 is out of range" -- "$SPROUT" train "$B" --set "$k=4294967328"
done
for k in at_step factor rewarm_steps ramp_steps; do
  expect 2 "growth\[0\]\.$k: 4294967328 is out of range" -- "$SPROUT" train "$T/ev.yaml" --set "growth[0].$k=4294967328"
done
expect 2 "growth\[0\]\.at_tokens: 9223372036854775807 is out of range" -- \
  "$SPROUT" train "$T/ev.yaml" --set 'growth[0].at_step=-1' --set 'growth[0].at_tokens=9223372036854775807'
expect 2 "train.seed: invalid value '18446744073709551616'" -- "$SPROUT" train "$B" --set train.seed=18446744073709551616
printf 'model: {d_model: 4294967328}\n' >"$T/wide.yaml"
expect 2 "wide.yaml:1: model.d_model: 4294967328 is out of range" -- "$SPROUT" train "$T/wide.yaml"
# steps x global_batch x seq_len beyond 2^63 tokens
expect 2 "train.steps: .*exceed 2\^63 tokens" -- "$SPROUT" train "$B" --set train.steps=2000000000 \
  --set train.global_batch=2000000000 --set train.micro_batch=2000000000 --set model.seq_len=2000000000

# --- schedule arithmetic: the largest at_tokens is an event past the end, not one at step 0 ---
cp "$T/ev.yaml" "$T/late.yaml"
sed -i 's/at_step: 2/at_tokens: 4611686018427387904/; s#out: .*#out: '"$T"'/late}#' "$T/late.yaml"
if timeout 120 "$SPROUT" train "$T/late.yaml" 2>"$T/late.log" && grep -q "comes after the last step (4): never applied" "$T/late.log" &&
  ! grep -q '"event":"growth"' "$T/late/metrics.jsonl"; then ok; else bad "huge at_tokens"; cat "$T/late.log"; fi

{ sed 's/n_layer: 2/n_layer: 65536/' "$B"; printf 'growth:\n  - {at_step: 1, op: coalesce_depth, factor: 65536}\n'; } >"$T/deep.yaml"
expect 2 "growth\[0\]\.factor: 65536 x the 65536 blocks after the event overflows" -- "$SPROUT" train "$T/deep.yaml"

# --- growth lists: no-op events and thousands of events are refused at once ---
expect 2 "growth\[0\]\.factor: 1 is out of range \(must be >= 2" -- "$SPROUT" train "$T/ev.yaml" --set 'growth[0].factor=1'
{ cat "$B"; echo "growth:"; for i in $(seq 200000); do echo "  - {at_step: 1, op: stack, factor: 1}"; done; } >"$T/many.yaml"
expect 2 "many.yaml: growth: more than 64 events; at most 64 are supported" -- "$SPROUT" train "$T/many.yaml"
{ sed 's/n_layer: 2/n_layer: 5/' "$B"; printf 'growth:\n  - {at_step: 1, op: stack, factor: auto}\n'; } >"$T/prime.yaml"
expect 2 "growth\[0\]\.factor: auto finds no factor 2..4 dividing the depth 5" -- "$SPROUT" train "$T/prime.yaml"

# --- floats: NaN and infinities refused for every CLI float and config float ---
"$SPROUT" train "$B" 2>/dev/null || bad "base run"
CK=$T/run/ckpt/step_00000004.h5
expect 2 "$T/fifo: is a FIFO" -- "$SPROUT" eval "$CK" --data "$T/fifo"
for v in nan inf -inf 1e999; do
  expect 2 "--temperature" -- "$SPROUT" sample "$CK" --temperature "$v" --tokens 4
  expect 2 "--val-fraction" -- "$SPROUT" prepare text "$T/c.txt" --out "$T/p" --val-fraction "$v"
done
for k in train.lr train.min_lr train.weight_decay train.beta1 train.beta2 train.eps train.grad_clip \
  vcycle.alpha vcycle.lr_scale; do
  expect 2 "$k: nan is not a finite number" -- "$SPROUT" train "$B" --set "$k=nan"
  expect 2 "$k: inf is not a finite number" -- "$SPROUT" train "$B" --set "$k=inf"
done
expect 2 "growth\[0\]\.noise: nan is not a finite number" -- "$SPROUT" train "$T/ev.yaml" --set 'growth[0].noise=nan'
printf 'train: {lr: .nan}\n' >"$T/nan.yaml"
expect 2 "nan.yaml:1: train.lr: invalid value '.nan'" -- "$SPROUT" train "$T/nan.yaml"

# --- run.out: UTF-8 only (checkpoints store the config as YAML); UTF-8 paths round-trip ---
expect 2 "run.out: byte 0xff at offset [0-9]+ is not valid UTF-8" -- "$SPROUT" train "$B" --set run.out="$T/"$'\xff'
expect 2 "data.train: control character 0x0a" -- "$SPROUT" train "$B" --set data.train="$T/a"$'\n'"b"
U="$T/rün-été"
if "$SPROUT" train "$B" --set run.out="$U" 2>/dev/null &&
  "$SPROUT" sample "$U/ckpt/step_00000004.h5" --tokens 4 >/dev/null 2>&1 &&
  "$SPROUT" eval "$U/ckpt/step_00000004.h5" --data "$T/data/val.bin" --batches 1 >/dev/null 2>&1; then ok
else bad "a UTF-8 run.out: its checkpoint does not sample or evaluate"; fi
# run.out naming a regular file (or a path through one) is bad input
: >"$T/plain"
expect 2 "run.out: $T/plain exists and is not a directory" -- "$SPROUT" train "$B" --set run.out="$T/plain"
expect 2 "run.out: $T/plain exists and is not a directory" -- "$SPROUT" train "$B" --set run.out="$T/plain/sub"

# --- two runs in one run.out: the second is refused, naming the first's pid and host ---
"$SPROUT" train "$B" --set run.out="$T/shared" --set train.steps=1000000 --set train.warmup_steps=1 \
  --set checkpoint.every=0 2>"$T/first.log" &
first=$!
PIDS+=("$first")
if wait_for "grep -q 'pid $first on' '$T/shared/.lock' 2>/dev/null" 60; then
  expect 2 "run.out: $T/shared is in use by another run \(pid $first on [^)]+\)" -- \
    "$SPROUT" train "$B" --set run.out="$T/shared" --resume auto
else bad "the first run never took the lock"; fi
kill -9 "$first" 2>/dev/null; wait "$first" 2>/dev/null
# a lock left by a killed run is no lock: the kernel released it with the process
expect 0 "" -- bash -c '"$@" 2>"$0"' "$T/after.log" "$SPROUT" train "$B" --set run.out="$T/shared" --resume auto

# --- the data file changed in place during a run: the run goes on with the tokens it read ---
# (the data is a private copy taken at start; before, truncating the mapped file was a SIGBUS)
cp "$T/data/train.bin" "$T/live.bin"
"$SPROUT" train "$B" --set data.train="$T/live.bin" --set run.out="$T/live" --set train.steps=1000000 \
  --set train.warmup_steps=1 2>"$T/live.log" &
live=$!
PIDS+=("$live")
steps() { grep -c '"step"' "$T/live/metrics.jsonl" 2>/dev/null || echo 0; }
if wait_for '[ "$(steps)" -ge 3 ]' 120; then
  truncate -s 100 "$T/live.bin"               # shrunk under the run
  n=$(steps); wait_for '[ "$(steps)" -ge $((n + 3)) ]' 120 || bad "no progress after truncate"
  cp "$T/data/val.bin" "$T/live.bin"          # cp over it: truncated, then rewritten
  n=$(steps); wait_for '[ "$(steps)" -ge $((n + 3)) ]' 120 || bad "no progress after cp"
  : >"$T/live.bin"                            # emptied
  n=$(steps); wait_for '[ "$(steps)" -ge $((n + 3)) ]' 120 || bad "no progress after emptying"
  kill -TERM "$live"
else
  bad "the run on live.bin never got going"; kill -9 "$live"
fi
wait "$live"; rc=$?
if [ "$rc" = 3 ] && ! grep -qi "bus error\|signal 7" "$T/live.log" &&
  grep -q "data.train: $T/live.bin changed on disk during the run; the run used the tokens it read" "$T/live.log"; then ok
else bad "data changed during the run: status $rc (want 3: stopped by SIGTERM after a checkpoint)"; tail -3 "$T/live.log"; fi

# --- messages name the thing: huge values, unknown arguments ---
{ printf 'data: {train: '; head -c 10000000 /dev/zero | tr '\0' a; printf '}\n'; } >"$T/huge.yaml"
expect 2 "huge.yaml:1: data.train: the value is 10000000 bytes long \(at most 4000\)" -- "$SPROUT" train "$T/huge.yaml"
expect 2 "^sprout: error: --set: run.out: the value is 100000 bytes long" -- "$SPROUT" train "$B" --set run.out="$(head -c 100000 /dev/zero | tr '\0' b)"
expect 2 "unknown key 'aaaa.*\.\.\.'" -- "$SPROUT" train "$B" --set "$(head -c 100000 /dev/zero | tr '\0' a)=1"
expect 2 "sprout train: unknown argument '--bogus'" -- "$SPROUT" train "$B" --bogus
expect 2 "sprout bench: unknown argument 'extra'" -- "$SPROUT" bench "$B" extra
expect 2 "sprout sample: unknown argument '--nope'" -- "$SPROUT" sample "$CK" --nope
expect 2 "sprout sample: --tokens takes a value" -- "$SPROUT" sample "$CK" --tokens
expect 2 "sprout eval: unknown argument '--dat'" -- "$SPROUT" eval "$CK" --dat x
expect 2 "sprout prepare: unknown argument '--outt'" -- "$SPROUT" prepare text "$T/c.txt" --outt x

echo "cli_hostile_inputs: $pass passed, $fail failed"
[ "$fail" = 0 ]
