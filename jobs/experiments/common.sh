# shellcheck shell=bash disable=SC2153
# Shared driver of the training experiments in jobs/experiments/ (sourced, not run on its own).
#
# An experiment script sets these, then calls `exp_main "$@"`:
#   EXP      the experiment's name: configs/$EXP/METHOD.yaml are its runs, runs/$EXP/METHOD their
#            outputs, docs/results/$EXP.md and docs/results/$EXP.png its report
#   METHODS  space-separated method names; the first is the baseline
#   ANALYZE  the analysis script, called as `ANALYZE --runs DIR --methods "..." --md F --png F`
#   HELP     the line range of the script's header comment that --help prints (sed, e.g. 2,17p)
#
# Options every experiment script takes (exp_main parses them):
#   --pilot STEPS   every method for STEPS steps (warm-up STEPS/10), into runs/$EXP-pilot/; the
#                   report goes there too, docs/results/ is not touched
#   --analyze-only  no set-up and no training: regenerate the report from the existing runs
#   --set KEY=VAL   (with --pilot, repeatable) an extra override for every run of the pilot
#   --only "M ..."  (with --pilot) train only these methods; the others keep their runs from an
#                   earlier pilot in the same directory, and the report covers the runs it finds
#   --out DIR       (with --pilot) the pilot directory instead of runs/$EXP-pilot
#
# Each method's run directory is deleted before it trains, so every run starts from step 0
# (jobs/workstation/train.sh adds --resume auto, which would otherwise continue an old run). All
# runs use one copy of build/sprout taken right after the build (jobs/workstation/setup.sh), and
# train on 2 ranks; each run's wall time goes to RUNS/METHOD/wall_s.

exp_usage() {
  sed -n "$HELP" "$0"
}

exp_main() {
  local pilot="" analyze_only=0 only="" out=""
  local -a sets=()
  while [ $# -gt 0 ]; do
    case $1 in
      --pilot) pilot=${2:?--pilot needs a step count}; shift 2 ;;
      --analyze-only) analyze_only=1; shift ;;
      --set) sets+=(--set "${2:?--set needs KEY=VALUE}"); shift 2 ;;
      --only) only=${2:?--only needs a method list}; shift 2 ;;
      --out) out=${2:?--out needs a directory}; shift 2 ;;
      -h | --help) exp_usage; exit 0 ;;
      *) echo "$EXP: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
  done
  if [ -z "$pilot" ] && { [ ${#sets[@]} -gt 0 ] || [ -n "$only" ] || [ -n "$out" ]; }; then
    echo "$EXP: --set, --only and --out go with --pilot;" \
      "a full run uses configs/$EXP/ as they are" >&2
    exit 2
  fi
  if [ -n "$pilot" ] && ! [[ $pilot =~ ^[1-9][0-9]*$ ]]; then
    echo "$EXP: --pilot: '$pilot' is not a step count" >&2
    exit 2
  fi
  local m
  for m in $only; do
    case " $METHODS " in
      *" $m "*) ;;
      *) echo "$EXP: --only: '$m' is not one of: $METHODS" >&2; exit 2 ;;
    esac
  done

  local runs out_md out_png
  local -a extra=()
  if [ -n "$pilot" ]; then
    runs=${out:-runs/$EXP-pilot}
    out_md=$runs/$EXP.md
    out_png=$runs/$EXP.png
    local warm=$((pilot / 10 > 0 ? pilot / 10 : 1))
    extra=(--set "train.steps=$pilot" --set "train.warmup_steps=$warm" ${sets[@]+"${sets[@]}"})
  else
    runs=runs/$EXP
    out_md=docs/results/$EXP.md
    out_png=docs/results/$EXP.png
  fi

  if [ "$analyze_only" = 0 ]; then
    exp_train "$runs" "${only:-$METHODS}" ${extra[@]+"${extra[@]}"}
  fi

  # the report covers the methods that have a finished run (all of them, except after --only)
  local have=""
  for m in $METHODS; do
    if [ -s "$runs/$m/metrics.jsonl" ]; then
      have="$have $m"
    elif [ -z "$pilot" ]; then
      echo "$EXP: $runs/$m has no metrics.jsonl; run the experiment first" >&2
      exit 1
    fi
  done
  local base=${METHODS%% *}
  if [ ! -s "$runs/$base/metrics.jsonl" ]; then
    echo "$EXP: no report: the baseline, $runs/$base, has no finished run" >&2
    return 0
  fi
  mkdir -p "$(dirname "$out_md")"
  /usr/bin/python3 "$ANALYZE" --runs "$runs" --methods "${have# }" --md "$out_md" --png "$out_png"
  echo "$EXP: wrote $out_md and $out_png"
}

# exp_train RUNS "METHOD ..." [EXTRA sprout options...]: set-up, then one run per method
exp_train() {
  local runs=$1 methods=$2
  shift 2
  local t_all
  t_all=$(date +%s)
  echo "$EXP: set-up (jobs/workstation/setup.sh)"
  bash jobs/workstation/setup.sh
  mkdir -p "$runs"
  # one binary for all runs, even if build/ is rebuilt while the experiment runs
  cp build/sprout "$runs/sprout.bin"
  export SPROUT=$PWD/$runs/sprout.bin
  # read-only git queries: the commit, and whether the built tree differed from it
  {
    local c
    c=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [ "$c" != unknown ] && ! git diff-index --quiet HEAD -- 2>/dev/null; then
      c="$c (with uncommitted changes in the working tree)"
    fi
    echo "$c"
  } >"$runs/commit"
  local n i=0 m out t0 t1 wall
  n=$(echo "$methods" | wc -w)
  for m in $methods; do
    i=$((i + 1))
    out=$runs/$m
    rm -rf "$out"
    mkdir -p "$out"
    echo "$EXP: [$i/$n] $m (configs/$EXP/$m.yaml, log $out/train.log), started $(date +%H:%M:%S)"
    t0=$(date +%s.%N)
    if ! jobs/workstation/train.sh -n 2 "configs/$EXP/$m.yaml" --set "run.out=$out" "$@" \
      >"$out/train.log" 2>&1; then
      echo "$EXP: $m failed; the end of its log:" >&2
      tail -20 "$out/train.log" >&2
      exit 1
    fi
    t1=$(date +%s.%N)
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    echo "$wall" >"$out/wall_s"
    grep -h '^growth\[[0-9]*\] before' "$out/train.log" | sed 's/^/    /' || true
    echo "    $(grep -h '^done:' "$out/train.log" || echo 'done'), wall ${wall} s"
  done
  echo "$EXP: training took $(($(date +%s) - t_all)) s"
}
