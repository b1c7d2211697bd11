#!/usr/bin/env bash
# Stop signals at every moment of a run, delivered where a process is known to be: sprout_points
# (sprout with the test points of include/sprout/testpoint.h) holds at a named point, the test
# signals, waits until the process reports the signal caught, and lets it go on. Nothing depends
# on timing.
#   start-up: rank 0 inside MPI_Init while rank 1 is held before it, rank 0 about to verify the
#     resume's checkpoint, both ranks about to load it: exit 3, no file changed, and the resume
#     then ends bit-identical to an uninterrupted run;
#   a second signal after the stop checkpoint (USR1 twice, TERM then INT): ignored, exit 3;
#   SIGINT to a lone process, Ctrl-C (SIGINT to the process group) of jobs/workstation/train.sh,
#   SIGTERM to train.sh with 2 ranks: a checkpoint that verifies and exit 3, and the resume
#   ends bit-identical to the uninterrupted run;
#   SIGTERM to jobs/slurm/train.sbatch (outside Slurm, scontrol stubbed): exit 3 and a requeue.
# usage: signals.sh SPROUT SPROUT_POINTS MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
SPROUT=$(realpath "$1") POINTS=$(realpath "$2")
shift 2
MPIEXEC=("$@")
SRC=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d)
pids=()
cleanup() { # let every held process go on, stop what is still running, remove the scratch dir
  for d in "$T"/*.pts; do [ -d "$d" ] && touch "$d"/release.{init,verify,load,step,exit}; done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
for i in $(seq 300); do echo "Line $i: a stop signal may come at any moment $((i * 5))."; done >"$T/c.txt"
"$SPROUT" prepare text "$T/c.txt" --out "$T/data" 2>/dev/null
cat >"$T/cfg.yaml" <<YAML
model: {vocab: 256, seq_len: 32, d_model: 32, n_head: 2, n_layer: 4}
data: {train: $T/data/train.bin, val: $T/data/val.bin}
train: {steps: 60, global_batch: 8, micro_batch: 2, lr: 3.0e-3, warmup_steps: 4, seed: 11}
eval: {every: 0}
run: {log_every: 1}
checkpoint: {every: 20, keep: 5}
YAML
fail=0
bad() { echo "FAIL: $*"; fail=1; }
train() { # out [args...]: 2 ranks of the real binary, --resume auto
  local out=$1; shift
  "${MPIEXEC[@]}" -n 2 "$SPROUT" train "$T/cfg.yaml" --set run.out="$T/$out" --resume auto "$@" \
    2>>"$T/$out.log"
}
train U || { cat "$T/U.log"; exit 1; }

# OUT with the uninterrupted run's step-20 checkpoint and its first 20 metrics lines
prev() {
  mkdir -p "$T/$1/ckpt" "$T/$1.pts"
  cp "$T/U/ckpt/step_00000020.h5" "$T/$1/ckpt/"
  echo step_00000020.h5 >"$T/$1/ckpt/latest"
  head -n 20 "$T/U/metrics.jsonl" >"$T/$1/metrics.jsonl"
  (cd "$T/$1" && sha256sum ckpt/* metrics.jsonl) >"$T/$1.sum"
}
# sprout_points with SPROUT_TEST_HOLD=$2 on 2 ranks in the background: $pid is mpirun
held() {
  local out=$1 hold=$2; shift 2
  SPROUT_TEST_POINT_DIR="$T/$out.pts" SPROUT_TEST_HOLD="$hold" "${MPIEXEC[@]}" -n 2 \
    -x SPROUT_TEST_POINT_DIR -x SPROUT_TEST_HOLD "$POINTS" train "$T/cfg.yaml" \
    --set run.out="$T/$out" --resume auto "$@" 2>>"$T/$out.log" &
  pid=$!
  pids+=("$pid")
}
# wait for files a test point writes (a bound against hangs only: 2 minutes each)
await() {
  for f; do
    for _ in $(seq 1200); do [ -s "$f" ] && break; sleep 0.1; done
    [ -s "$f" ] || { bad "$f never appeared"; return 1; }
  done
}
ended() { # name want: the job's status
  wait "$pid"
  local rc=$?
  [ "$rc" = "$2" ] || { bad "$1 exited $rc, want $2"; tail -n 5 "$T/$1.log"; }
}
intact() { # name: no file under OUT changed, and the start-up stop said so
  (cd "$T/$1" && sha256sum -c --quiet "$T/$1.sum") || bad "$1: files changed"
  [ "$(ls "$T/$1/ckpt")" = "$(printf 'latest\nstep_00000020.h5')" ] || bad "$1: new files: $(ls "$T/$1/ckpt")"
  grep -q "stopped by signal .* during start-up" "$T/$1.log" || bad "$1: no start-up stop reported"
}
verifies() { # name step: latest names that step's checkpoint and it verifies
  local c
  c="$T/$1/ckpt/step_$(printf %08d "$2").h5"
  [ "$(cat "$T/$1/ckpt/latest")" = "$(basename "$c")" ] || bad "$1: latest is $(cat "$T/$1/ckpt/latest")"
  "$SPROUT" inspect "$c" >"$T/$1.inspect" 2>&1 || { bad "$1: $c does not verify"; cat "$T/$1.inspect"; }
}
# stop_at OUT POINT RANKS SIG TARGET [SIG TARGET]...: once the ranks RANKS are at POINT, send
# each SIG to its TARGET (a pid, -PGID, or rankN: that rank's pid), wait until the ranks report
# a signal caught, and let them go on
stop_at() {
  local out=$1 point=$2 ranks=$3 r
  shift 3
  for r in $ranks; do await "$T/$out.pts/$point.$r" || return 1; done
  while [ $# -ge 2 ]; do
    local to=$2
    case $to in rank*) to=$(cat "$T/$out.pts/$point.${to#rank}") ;; esac
    kill "-$1" -- "$to"
    shift 2
  done
  for r in $ranks; do await "$T/$out.pts/$point.$r.sig"; done
  touch "$T/$out.pts/release.$point"
}
tasks() { find "/proc/$1/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# 1. start-up, before and during MPI_Init: rank 1 is held before MPI_Init, so rank 0 cannot
# leave MPI_Init; it is inside once it has started MPI's threads (more than rank 1 has)
prev I
held I "init@1"
await "$T/I.pts/init.0" "$T/I.pts/init.1"
r0=$(cat "$T/I.pts/init.0") r1=$(cat "$T/I.pts/init.1")
for _ in $(seq 3000); do [ "$(tasks "$r0")" -gt "$(tasks "$r1")" ] && break; sleep 0.1; done
[ "$(tasks "$r0")" -gt "$(tasks "$r1")" ] || bad "rank 0 did not reach MPI_Init"
kill -USR1 "$r0"
kill -TERM "$r1"
await "$T/I.pts/init.1.sig"
touch "$T/I.pts/release.init"
ended I 3
intact I
echo "start-up: USR1 to rank 0 inside MPI_Init, TERM to rank 1 before it: exit 3, files unchanged"

# 2. rank 0 about to verify the checkpoint --resume auto picks (rank 1 waits for its choice)
prev V
held V "verify@0"
stop_at V verify 0 USR1 rank0
ended V 3
intact V
echo "start-up: USR1 to rank 0 before verifying: exit 3, files unchanged"

# 3. both ranks about to load it: TERM to rank 1, INT to rank 0
prev L
held L "load"
stop_at L load "0 1" TERM rank1 INT rank0
ended L 3
intact L
echo "start-up: TERM and INT before loading: exit 3, files unchanged"

# 4. USR1 at step 30; after the stop checkpoint, at exit, USR1 again to rank 0, TERM then INT to
# rank 1, and USR1 to mpirun (forwarded to both)
prev S
held S "step=30,exit"
stop_at S step 0 USR1 rank0
await "$T/S.pts/exit.0" "$T/S.pts/exit.1"
kill -USR1 "$(cat "$T/S.pts/exit.0")"
kill -TERM "$(cat "$T/S.pts/exit.1")"
kill -INT "$(cat "$T/S.pts/exit.1")"
kill -USR1 "$pid"
touch "$T/S.pts/release.exit"
ended S 3
verifies S 30
grep -q "stopped by signal 10 at step 30 after a checkpoint" "$T/S.log" || bad "S: no stop at step 30"
echo "second signals after the stop checkpoint: ignored, exit 3, step 30 verifies"

# 5. SIGINT to a lone process (no mpirun), at step 10
mkdir -p "$T/N.pts"
SPROUT_TEST_POINT_DIR="$T/N.pts" SPROUT_TEST_HOLD="step=10" env --default-signal=INT "$POINTS" train "$T/cfg.yaml" \
  --set run.out="$T/N" 2>"$T/N.log" &
pid=$!
pids+=("$pid")
stop_at N step 0 INT "$pid"
ended N 3
verifies N 10
echo "SIGINT to a lone process: checkpoint at step 10, exit 3"

# 6. Ctrl-C of jobs/workstation/train.sh: SIGINT to its whole process group, as a terminal sends
# it to the job in the foreground, at step 30
wrapped() { # out hold script [args]: the script with sprout_points, in the background but as a
  # terminal would start it in the foreground: a group leader (setsid) and SIGINT not ignored
  local out=$1 hold=$2 script=$3; shift 3
  mkdir -p "$T/$out.pts"
  SPROUT="$POINTS" SPROUT_TEST_POINT_DIR="$T/$out.pts" SPROUT_TEST_HOLD="$hold" \
    setsid env --default-signal=INT bash "$script" "$@" --set run.out="$T/$out" >>"$T/$out.log" 2>&1 &
  pid=$!
  pids+=("$pid")
}
prev C
wrapped C "step=30" "$SRC/jobs/workstation/train.sh" -n 2 "$T/cfg.yaml"
stop_at C step "0 1" INT "-$pid"
ended C 3
verifies C 30
echo "Ctrl-C of train.sh (SIGINT to its process group): checkpoint at step 30, exit 3"

# 7. SIGTERM to train.sh, what a scheduler or a service manager sends
prev K
wrapped K "step=30" "$SRC/jobs/workstation/train.sh" -n 2 "$T/cfg.yaml"
stop_at K step "0 1" TERM "$pid"
ended K 3
verifies K 30
echo "SIGTERM to train.sh: checkpoint at step 30, exit 3"

# 8. SIGTERM to the Slurm batch script (run outside Slurm, scontrol stubbed): it asks the ranks
# to stop, sees 3 and requeues its job
mkdir -p "$T/bin"
printf '#!/bin/sh\necho "$@" >>"%s/scontrol.calls"\n' "$T" >"$T/bin/scontrol"
chmod +x "$T/bin/scontrol"
prev Q
PATH="$T/bin:$PATH" SLURM_JOB_ID=4242 SLURM_NTASKS=2 SLURM_SUBMIT_DIR="$T" \
  SPROUT_MPIRUN_FLAGS="${MPIEXEC[*]:1}" wrapped Q "step=30" "$SRC/jobs/slurm/train.sbatch" "$T/cfg.yaml"
stop_at Q step "0 1" TERM "$pid"
ended Q 0
verifies Q 30
grep -qx "requeue 4242" "$T/scontrol.calls" 2>/dev/null || bad "train.sbatch did not requeue its job"
echo "SIGTERM to train.sbatch: checkpoint at step 30, exit 3, requeued"

# every stopped run continues with the real binary to the uninterrupted run's end
for n in I V L S C K Q; do train "$n" || { bad "$n: the resume failed"; tail -n 5 "$T/$n.log"; }; done
PYTHONPATH="$SRC/tests/cli" /usr/bin/python3 - "$T" <<'PY' || fail=1
import sys
from runs import Runs
r = Runs(sys.argv[1])
lines = r.raw_steps  # metrics lines as bytes, less the wall-clock fields and event lines
u = lines("U")
for n in ("I", "V", "L", "S", "C", "K", "Q"):
    r.check(r.same_weights("U", n), f"{n}: final weights/moments differ from the uninterrupted run")
    r.check(lines(n) == u, f"{n}: metrics lines differ from the uninterrupted run")
    r.check(any(x.get("event") == "restart" for x in r.rows(n)), f"{n}: no restart event")
sys.exit(r.finish("signals resumed"))
PY
[ "$fail" = 0 ] && echo "signals: all cases passed"
[ "$fail" = 0 ]
