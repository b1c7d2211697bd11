#!/usr/bin/env bash
# Bad layouts on 2 ranks, before and after a growth event: one error line (from rank 0 only),
# exit status 2 from the job, no hang.
# usage: bad_layouts.sh SPROUT_BINARY MPIEXEC [MPIEXEC_FLAGS...]
set -u
SPROUT=$1; shift
MPIEXEC=("$@")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
SRC=${SPROUT_SOURCE_DIR:?}
pass=0 fail=0
case_() { # pattern, then --set arguments
  local pat=$1; shift
  timeout 60 "${MPIEXEC[@]}" -n 2 "$SPROUT" train "$SRC/configs/tiny.yaml" "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  local n
  n=$(grep -c "sprout: error" "$T/err")
  if [ "$rc" = 2 ] && [ "$n" = 1 ] && grep -q -- "$pat" "$T/err"; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1)); echo "FAIL ($pat): rc $rc, $n error lines:"; cat "$T/err"
  fi
}
# the demo's growth event cleared: these are the layouts of a fixed model
case_ "parallel.pipeline = 3 does not divide the 2 MPI ranks" --set growth=[] --set parallel.pipeline=3
case_ "parallel.pipeline = 2 is larger than model.n_layer = 1" --set growth=[] --set parallel.pipeline=2 \
  --set model.n_layer=1
case_ "train.global_batch = 32 is not divisible by data-parallel ranks (2) x train.micro_batch (32)" \
  --set growth=[] --set train.micro_batch=32
# the layout after a growth event is checked before step 0, naming the event
case_ "growth\[0\].pipeline = 3 does not divide the 2 MPI ranks" --set "growth[0].pipeline=3"
case_ "growth\[0\].pipeline = 8 is larger than the 4 blocks after the event" --set "growth[0].pipeline=8"
echo "bad_layouts: $pass passed, $fail failed"
[ "$fail" = 0 ]
