#!/usr/bin/env bash
# A full file system during a checkpoint, on 1 rank and on 2 (pp = 2, so that the ranks write
# different tensors). The run directory sits on a small tmpfs the test mounts; beside the step-10
# checkpoint of an uninterrupted run a filler file leaves a chosen number of bytes free, so that the step-20
# save fails at a chosen phase: the metadata check before the file exists, the reservation of the
# whole file (before any tensor is written: data that would not fit, and data that would fit but
# the metadata the flush writes would not), the tensor writes themselves (a build without the
# reservation), and the update of `latest`. Each time: exit status 1 within the timeout, one
# error line naming the file and "No space left on device", no HDF5 stack, crash or abort, the
# step-10 checkpoint and `latest` byte-identical and nothing else in ckpt/; with the filler
# gone, --resume auto continues from step 10 and ends bit-identical to an uninterrupted run.
# usage: disk_full.sh SPROUT SPROUT_NO_RESERVE MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
SPROUT=$1 NORES=$2; shift 2
MPIEXEC=("$@")
T=$(mktemp -d)
M="$T/fs"
mkdir "$M"
if ! mount -t tmpfs -o size=24m tmpfs "$M" 2>/dev/null; then
  echo "SKIP: mounting a tmpfs is not permitted here"
  rm -rf "$T"
  exit 77
fi
trap 'umount "$M" 2>/dev/null; rm -rf "$T"' EXIT
for i in $(seq 300); do echo "Line $i: disks fill up at the worst moment $((i * 7))."; done >"$T/c.txt"
"$SPROUT" prepare text "$T/c.txt" --out "$T/data" 2>/dev/null
cat >"$T/cfg.yaml" <<YAML
model: {vocab: 256, seq_len: 32, d_model: 64, n_head: 2, n_layer: 4}
data: {train: $T/data/train.bin, val: $T/data/val.bin}
train: {steps: 20, global_batch: 8, micro_batch: 2, lr: 3.0e-3, warmup_steps: 4, seed: 7}
eval: {every: 0}
run: {log_every: 10}
checkpoint: {every: 10, keep: 5}
YAML
# run NP BINARY OUT [options]: sprout train on NP ranks (2 = two pipeline stages), bounded
run() {
  local np=$1 bin=$2 out=$3; shift 3
  if [ "$np" = 1 ]; then
    timeout 120 "$bin" train "$T/cfg.yaml" --set run.out="$out" --resume auto "$@"
  else
    timeout 120 "${MPIEXEC[@]}" -n 2 "$bin" train "$T/cfg.yaml" --set run.out="$out" \
      --set parallel.pipeline=2 --resume auto "$@"
  fi
}
fail=0 pass=0
run 1 "$SPROUT" "$T/U1" 2>"$T/U1.log" || { cat "$T/U1.log"; exit 1; }
run 2 "$SPROUT" "$T/U2" 2>"$T/U2.log" || { cat "$T/U2.log"; exit 1; }
# the sizes that place the failure: the file, its tensors' bytes, sprout's metadata bound
# (64 KiB + 4 KiB per dataset, src/io/ckpt.c meta_bound) and a page
read -r E D NDS < <(/usr/bin/python3 - "$T/U1/ckpt/step_00000020.h5" <<'PY'
import os, sys, h5py
f = h5py.File(sys.argv[1], "r")
ds = []
f.visititems(lambda n, o: ds.append(o.id.get_storage_size()) if isinstance(o, h5py.Dataset) else None)
print(os.path.getsize(sys.argv[1]), sum(ds), len(ds))
PY
)
P=4096
up() { echo $(((($1) + P - 1) / P * P)); }
MB=$(((64 + 4 * (NDS + 15)) * 1024)) # NDS counts slab_steps, meta_bound does not
[ "$MB" -lt "$D" ] || { echo "FAIL: the model is too small to separate the phases"; exit 1; }
echo "checkpoint: $E bytes, $D of tensors in $NDS datasets; metadata bound $MB"

# case_ NAME NP BINARY FREE_BYTES PATTERN (FREE_BYTES "all": no filler, the inodes are limited)
case_() {
  local name=$1 np=$2 bin=$3 free=$4 pat=$5 out="$M/r" ok=1
  rm -rf "${M:?}"/*
  # the uninterrupted run's step-10 checkpoint, as if this run had written it
  mkdir -p "$out/ckpt" && cp "$T/U$np/ckpt/step_00000010.h5" "$out/ckpt/"
  echo step_00000010.h5 >"$out/ckpt/latest"
  rm -rf "$T/before" && cp -a "$out/ckpt" "$T/before"
  local avail
  avail=$(df -B1 --output=avail "$M" | tail -1)
  if [ "$free" != all ]; then
    fallocate -l $((avail - free)) "$M/filler" || { echo "FAIL: cannot make the filler"; exit 1; }
  fi
  run "$np" "$bin" "$out" >"$T/out" 2>"$T/err"
  local rc=$? n
  n=$(grep -c "^sprout: error" "$T/err")
  if [ "$rc" != 1 ] || [ "$n" != 1 ] || ! grep "^sprout: error: $out/ckpt/$pat" "$T/err" | grep -q "No space left on device"; then
    echo "FAIL ($name): exit $rc (want 1), $n error lines (want 1 matching \"$pat\")"; ok=0
  fi
  # (an ASan report would also exit 1: it must not be the error seen)
  if grep -E -q "HDF5-DIAG|Segmentation|[Ss]ignal|MPI_ABORT|mca_|overflow|backtrace|Sanitizer|runtime error" "$T/err"; then
    echo "FAIL ($name): HDF5 stack, crash or abort on stderr"; ok=0
  fi
  [ "$ok" = 1 ] || cat "$T/err"
  if [ "$(ls "$out/ckpt")" != "$(ls "$T/before")" ] || ! cmp -s "$out/ckpt/latest" "$T/before/latest" ||
    ! cmp -s "$out/ckpt/step_00000010.h5" "$T/before/step_00000010.h5"; then
    echo "FAIL ($name): ckpt/ changed:"; ls -la "$out/ckpt"; ok=0
  fi
  rm -f "$M/filler"
  [ "$free" != all ] || mount -o remount,nr_inodes=100000 "$M" # room again for the resume
  run "$np" "$SPROUT" "$out" 2>"$T/resume.log"
  rc=$?
  if [ "$rc" != 0 ] || ! grep -q "resumed from .*step_00000010.h5" "$T/resume.log"; then
    echo "FAIL ($name): --resume auto exit $rc"; cat "$T/resume.log"; ok=0
  elif ! /usr/bin/python3 - "$out/ckpt/step_00000020.h5" "$T/U$np/ckpt/step_00000020.h5" <<'PY'; then
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:])
t = []
a.visititems(lambda n, o: t.append(n) if isinstance(o, h5py.Dataset) else None)
sys.exit(0 if all(np.array_equal(a[n][()], b[n][()]) for n in t) else 1)
PY
    echo "FAIL ($name): the resumed run differs from the uninterrupted one"; ok=0
  fi
  if [ "$ok" = 1 ]; then
    pass=$((pass + 1)); echo "ok   $name: $(sed -n 's/^sprout: error: //p' "$T/err" | cut -c1-150)"
  else
    fail=$((fail + 1))
  fi
}
MID=$(((MB + D) / 2 / P * P)) # room for the metadata, not for the tensors
FIT=$(($(up "$D") + P))       # room for the tensors, not for the file's metadata
for np in 1 2; do
  case_ "np$np metadata check" "$np" "$SPROUT" $((MB / 2)) "step_00000020.h5.tmp: .*checking for"
  case_ "np$np tensors do not fit" "$np" "$SPROUT" "$MID" "step_00000020.h5.tmp: .*reserving"
  case_ "np$np metadata does not fit (flush)" "$np" "$SPROUT" "$FIT" "step_00000020.h5.tmp: .*reserving"
  case_ "np$np tensor write" "$np" "$NORES" "$MID" "step_00000020.h5.tmp: writing .* failed"
  # the checkpoint is written, but the file system has no inode left for latest.tmp (bytes
  # cannot place this one: closing the checkpoint gives back the page its reservation rounded
  # up to, and latest.tmp takes it): the limit is what a run that had the room holds at its end,
  # when the old `latest` has been replaced; latest.tmp needs one more
  rm -rf "${M:?}"/* && mkdir -p "$M/r/ckpt" && cp "$T/U$np/ckpt/step_00000010.h5" "$M/r/ckpt/"
  echo step_00000010.h5 >"$M/r/ckpt/latest"
  run "$np" "$SPROUT" "$M/r" 2>/dev/null >/dev/null || { echo "FAIL: the probe run failed"; exit 1; }
  IU=$(df --output=iused "$M" | tail -1 | tr -d " ")
  rm -rf "${M:?}"/*
  mount -o remount,nr_inodes="$IU" "$M" || { echo "FAIL: cannot limit the inodes"; exit 1; }
  case_ "np$np latest" "$np" "$SPROUT" all "latest.tmp: cannot create"
done
echo "disk_full: $pass passed, $fail failed"
[ "$fail" = 0 ]
