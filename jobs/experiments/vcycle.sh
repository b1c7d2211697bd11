#!/usr/bin/env bash
# V-cycles on the Brown corpus: the full-size model (d_model 128, 4 heads, 8 blocks) trained
# from scratch against a 2-level and a 3-level V-cycle (each level halves width and depth), all
# for the same token budget on 2 ranks (configs/vcycle/*.yaml). Then
# jobs/experiments/analyze_vcycle.py writes docs/results/vcycle.md (validation loss vs. FLOPs,
# the FLOPs each method needs to reach the baseline's final validation loss, the loss at every
# level change) and docs/results/vcycle.png (gnuplot). About 12.5 minutes on 2 cores (measured
# while other jobs shared the machine; the baseline is most of it).
#
# usage: jobs/experiments/vcycle.sh [--analyze-only] [--pilot STEPS [--set KEY=VAL]...
#                                   [--only "METHOD ..."] [--out DIR]]
#   --pilot STEPS   every method for STEPS steps (warm-up STEPS/10), into runs/vcycle-pilot/;
#                   the report goes there too, docs/results/ is not touched
#   --analyze-only  no set-up and no training: regenerate the report from the existing runs
#   --set, --only, --out: pilot-only options, see jobs/experiments/common.sh. The lr_scale pilot
#                   (docs/results/vcycle.md) was, with P="--pilot 240 --set eval.every=20":
#                     vcycle.sh $P --set vcycle.lr_scale=4
#                     vcycle.sh $P --set vcycle.lr_scale=2 --only vcycle-3 --out runs/vcycle-pilot-lr2
#                   (runs/vcycle-pilot/baseline copied into runs/vcycle-pilot-lr2/ for its report)
#
# Safe to re-run: each method's run directory is deleted before it trains, so every run starts
# from step 0. All three runs use one copy of build/sprout taken right after the build.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source-path=SCRIPTDIR source=common.sh
. jobs/experiments/common.sh

EXP=vcycle
METHODS="baseline vcycle-2 vcycle-3"
ANALYZE=jobs/experiments/analyze_vcycle.py
HELP=2,23p
exp_main "$@"
