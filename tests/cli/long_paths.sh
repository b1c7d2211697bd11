#!/usr/bin/env bash
# Long run.out paths. Open MPI 4.1's default MPI-IO component aborted every checkpoint under a
# path longer than about 218 characters (a fixed buffer in its sharedfp/lockedfile component);
# sprout now chooses its MPI-IO configuration itself at start. With checkpoint.every 0 (the one
# checkpoint is the last step's), paths of 200 to ~4000 characters checkpoint and verify when
# sprout runs alone, under mpirun on 2 ranks and through jobs/workstation/train.sh; the component
# Open MPI selects is ROMIO; a user's own choice of ompio is kept and still works. A run.out
# too long for the checkpoint paths under it (PATH_MAX), or with a component longer than
# NAME_MAX, is refused at start: exit 2, one line naming run.out, before any training step.
# usage: long_paths.sh SPROUT MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
SPROUT=$1; shift
MPIEXEC=("$@")
SRC=${SPROUT_SOURCE_DIR:?}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for i in $(seq 200); do echo "Line $i: a path as long as a paragraph $((i * 5))."; done >"$T/c.txt"
"$SPROUT" prepare text "$T/c.txt" --out "$T/data" 2>/dev/null
cat >"$T/cfg.yaml" <<YAML
model: {vocab: 256, seq_len: 16, d_model: 16, n_head: 2, n_layer: 2}
data: {train: $T/data/train.bin, val: $T/data/val.bin}
train: {steps: 3, global_batch: 4, micro_batch: 2, lr: 3.0e-3, warmup_steps: 1, seed: 3}
eval: {every: 0}
run: {log_every: 1}
checkpoint: {every: 0, keep: 2}
YAML
# a directory path of exactly LEN characters under $T/p: components of up to 200 characters
long_path() {
  local want=$1 p="$T/p" c
  c=$(printf 'd%.0s' $(seq 200))
  while [ $((${#p} + 201)) -le "$want" ]; do p="$p/$c"; done
  local rest=$((want - ${#p} - 1))
  if [ "$rest" -gt 0 ]; then p="$p/${c:0:$rest}"; elif [ "$rest" = 0 ]; then p="${p}d"; fi
  echo "$p"
}
fail=0 pass=0
check() { # NAME: expects exit 0, the last checkpoint verifying, `latest` naming it
  local name=$1 rc=$2 out=$3
  if [ "$rc" = 0 ] && [ "$(cat "$out/ckpt/latest" 2>/dev/null)" = step_00000003.h5 ] &&
    "$SPROUT" inspect "$out/ckpt/step_00000003.h5" >"$T/inspect" 2>&1; then
    pass=$((pass + 1)); echo "ok   $name"
  else
    fail=$((fail + 1)); echo "FAIL ($name): exit $rc"; cat "$T/err"
  fi
  rm -rf "$T/p"
}
# the longest run.out sprout accepts: the config's bound on a path (SP_CFG_PATH_MAX), which
# leaves room below PATH_MAX for the checkpoint names and the MPI-IO library
MAX=4000
for len in 200 218 219 240 1000 $MAX; do
  out=$(long_path "$len")
  timeout 120 "$SPROUT" train "$T/cfg.yaml" --set run.out="$out" 2>"$T/err"
  check "alone, run.out of $len characters" $? "$out"
  out=$(long_path "$len")
  OMPI_MCA_io_base_verbose=10 timeout 120 "${MPIEXEC[@]}" -n 2 -x OMPI_MCA_io_base_verbose \
    "$SPROUT" train "$T/cfg.yaml" --set run.out="$out" 2>"$T/err" >"$T/out"
  rc=$?
  if ! grep -q "Selected io module romio" "$T/out" "$T/err"; then
    echo "FAIL: Open MPI did not select ROMIO"; grep -h "io module\|file_select" "$T/out" "$T/err" | head -5; fail=$((fail + 1))
  fi
  check "mpirun -n 2, run.out of $len characters" $rc "$out"
done
for len in 240 4000; do
  out=$(long_path "$len")
  SPROUT="$SPROUT" timeout 120 bash "$SRC/jobs/workstation/train.sh" -n 2 "$T/cfg.yaml" \
    --set run.out="$out" 2>"$T/err" >/dev/null
  check "jobs/workstation/train.sh -n 2, run.out of $len characters" $? "$out"
done
# the user's own choice is kept: ompio asked for explicitly (its lockedfile component stays out)
out=$(long_path 240)
OMPI_MCA_io=ompio OMPI_MCA_io_base_verbose=10 timeout 120 "${MPIEXEC[@]}" -n 2 -x OMPI_MCA_io \
  -x OMPI_MCA_io_base_verbose "$SPROUT" train "$T/cfg.yaml" --set run.out="$out" 2>"$T/err" >"$T/out"
rc=$?
grep -q "Selected io module ompio" "$T/out" "$T/err" || { echo "FAIL: OMPI_MCA_io=ompio was overridden"; fail=$((fail + 1)); }
check "mpirun -n 2 with OMPI_MCA_io=ompio, run.out of 240 characters" $rc "$out"

# too long: refused at start, before training
refuse() { # NAME PATTERN RUN.OUT
  local name=$1 pat=$2 out=$3
  timeout 120 "${MPIEXEC[@]}" -n 2 "$SPROUT" train "$T/cfg.yaml" --set run.out="$out" >/dev/null 2>"$T/err"
  local rc=$? n
  n=$(grep -c "^sprout: error" "$T/err")
  if [ "$rc" = 2 ] && [ "$n" = 1 ] && grep -q "^sprout: error: \(--set: \)\?run.out: .*$pat" "$T/err" &&
    ! grep -q "^step " "$T/err" && [ ! -e "$T/p" ]; then
    pass=$((pass + 1)); echo "ok   $name: $(sed -n 's/^sprout: error: //p' "$T/err" | cut -c1-150)"
  else
    fail=$((fail + 1)); echo "FAIL ($name): exit $rc (want 2), $n error lines"; head -c 2000 "$T/err"
  fi
  rm -rf "$T/p"
}
refuse "run.out of $((MAX + 1)) characters" "the value is $((MAX + 1)) bytes long (at most $MAX)" "$(long_path $((MAX + 1)))"
refuse "run.out of 5000 characters" "the value is 5000 bytes long (at most $MAX)" "$(long_path 5000)"
refuse "a 300-character component" "more than NAME_MAX" "$T/p/$(printf 'c%.0s' $(seq 300))/run"
echo "long_paths: $pass passed, $fail failed"
[ "$fail" = 0 ]
