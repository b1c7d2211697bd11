#!/usr/bin/env bash
# Depth growth on the Brown corpus: the 8-block baseline trained from scratch against G_stack
# from 2 and from 4 blocks, interpolate, zero and random from 2 blocks, all for the same token
# budget on 2 ranks (configs/depth-growth/*.yaml). Then jobs/experiments/analyze_growth.py
# writes docs/results/depth-growth.md (validation loss vs. FLOPs, the FLOPs each method needs
# to reach the baseline's final validation loss) and docs/results/depth-growth.png (gnuplot).
# About 25 minutes on an idle 2-core machine (32 minutes measured while other jobs shared it).
#
# usage: jobs/experiments/depth-growth.sh [--analyze-only] [--pilot STEPS [--set KEY=VAL]...
#                                         [--only "METHOD ..."] [--out DIR]]
#   --pilot STEPS   every method for STEPS steps (warm-up STEPS/10), into runs/depth-growth-pilot/;
#                   the report goes there too, docs/results/ is not touched
#   --analyze-only  no set-up and no training: regenerate the report from the existing runs
#   --set, --only, --out: pilot-only options, see jobs/experiments/common.sh
#
# Safe to re-run: each method's run directory is deleted before it trains, so every run starts
# from step 0. All six runs use one copy of build/sprout taken right after the build.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source-path=SCRIPTDIR source=common.sh
. jobs/experiments/common.sh

EXP=depth-growth
METHODS="baseline stack-2to8 stack-4to8 interpolate-2to8 zero-2to8 random-2to8"
ANALYZE=jobs/experiments/analyze_growth.py
HELP=2,17p
exp_main "$@"
