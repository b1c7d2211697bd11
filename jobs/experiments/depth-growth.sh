#!/usr/bin/env bash
# Depth growth on the Brown corpus: the 8-block baseline trained from scratch against G_stack
# from 2 and from 4 blocks, interpolate, zero and random from 2 blocks, all for the same token
# budget on 2 ranks (configs/depth-growth/*.yaml). Then jobs/experiments/analyze_growth.py
# writes docs/results/depth-growth.md (validation loss vs. FLOPs, the FLOPs each method needs
# to reach the baseline's final validation loss) and docs/results/depth-growth.png (gnuplot).
# About 25 minutes on an idle 2-core machine (32 minutes measured while other jobs shared it).
#
# usage: jobs/experiments/depth-growth.sh [--pilot STEPS] [--analyze-only]
#   --pilot STEPS   every method for STEPS steps (warm-up STEPS/10), into runs/depth-growth-pilot/;
#                   the report goes there too, docs/results/ is not touched
#   --analyze-only  no set-up and no training: regenerate the report from the existing runs
#
# Safe to re-run: each method's run directory is deleted before it trains, so every run starts
# from step 0 (jobs/workstation/train.sh adds --resume auto, which would otherwise continue an
# old run). All six runs use one copy of build/sprout taken right after the build.
set -euo pipefail
cd "$(dirname "$0")/../.."

METHODS="baseline stack-2to8 stack-4to8 interpolate-2to8 zero-2to8 random-2to8"
PILOT=""
ANALYZE_ONLY=0
while [ $# -gt 0 ]; do
  case $1 in
    --pilot) PILOT=${2:?--pilot needs a step count}; shift 2 ;;
    --analyze-only) ANALYZE_ONLY=1; shift ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "depth-growth: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if [ -n "$PILOT" ]; then
  RUNS=runs/depth-growth-pilot
  OUT_MD=$RUNS/depth-growth.md
  OUT_PNG=$RUNS/depth-growth.png
  WARM=$((PILOT / 10 > 0 ? PILOT / 10 : 1))
  EXTRA=(--set "train.steps=$PILOT" --set "train.warmup_steps=$WARM")
else
  RUNS=runs/depth-growth
  OUT_MD=docs/results/depth-growth.md
  OUT_PNG=docs/results/depth-growth.png
  EXTRA=()
fi

if [ "$ANALYZE_ONLY" = 0 ]; then
  T_ALL=$(date +%s)
  echo "depth-growth: set-up (jobs/workstation/setup.sh)"
  bash jobs/workstation/setup.sh
  mkdir -p "$RUNS"
  # one binary for all runs, even if build/ is rebuilt while the experiment runs
  cp build/sprout "$RUNS/sprout.bin"
  export SPROUT=$PWD/$RUNS/sprout.bin
  # read-only git queries: the commit, and whether the built tree differed from it
  {
    c=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [ "$c" != unknown ] && ! git diff-index --quiet HEAD -- 2>/dev/null; then
      c="$c (with uncommitted changes in the working tree)"
    fi
    echo "$c"
  } >"$RUNS/commit"
  n=$(echo "$METHODS" | wc -w)
  i=0
  for m in $METHODS; do
    i=$((i + 1))
    out=$RUNS/$m
    rm -rf "$out"
    mkdir -p "$out"
    echo "depth-growth: [$i/$n] $m (configs/depth-growth/$m.yaml, log $out/train.log), started $(date +%H:%M:%S)"
    t0=$(date +%s.%N)
    if ! jobs/workstation/train.sh -n 2 "configs/depth-growth/$m.yaml" --set "run.out=$out" \
      ${EXTRA[@]+"${EXTRA[@]}"} >"$out/train.log" 2>&1; then
      echo "depth-growth: $m failed; the end of its log:" >&2
      tail -20 "$out/train.log" >&2
      exit 1
    fi
    t1=$(date +%s.%N)
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    echo "$wall" >"$out/wall_s"
    grep -h "^growth\[0\] before" "$out/train.log" | sed 's/^/    /' || true
    echo "    $(grep -h '^done:' "$out/train.log" || echo 'done'), wall ${wall} s"
  done
  echo "depth-growth: training took $(($(date +%s) - T_ALL)) s"
fi

mkdir -p "$(dirname "$OUT_MD")"
/usr/bin/python3 jobs/experiments/analyze_growth.py --runs "$RUNS" --methods "$METHODS" \
  --md "$OUT_MD" --png "$OUT_PNG"
echo "depth-growth: wrote $OUT_MD and $OUT_PNG"
