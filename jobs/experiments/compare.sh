#!/usr/bin/env bash
# The growth-measurement protocol (docs/experiments.md) as a resumable queue of runs: noise
# floor, baseline LR sweep, the baseline's annealed frontier (cooldown branches of one
# constant-LR run), every growth method (G_stack at several growth times, the other operators at
# the chosen one), paired seeds of the baseline and the best arms, fixed small models at equal
# FLOPs. Choices are read on the tune half of the validation documents, figures on the other.
#
# usage: jobs/experiments/compare.sh [--quick] [--out DIR] [--status] [--report] [--plan FILE]
#   (no option)  run (or continue) the full plan in runs/protocol; the report goes to
#                docs/results/README.md and docs/results/summary.json
#   --quick      the tiny plan (configs/protocol/quick.yaml, about a minute), report in OUT
#   --out DIR    the queue's directory (runs, manifest, choices; the report too unless full)
#   --status     what is done, running and left, the plan's FLOPs and the ETA; runs nothing
#   --report     regenerate the report from whatever has finished; runs nothing
#   --mpirun "CMD FLAGS"   the MPI launcher (default: mpirun --oversubscribe --bind-to none)
# Starting it again continues the queue: finished runs are skipped, an interrupted run resumes
# from its checkpoint. SIGTERM or Ctrl-C stops the running run at its next step with a
# checkpoint (exit 3).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source-path=SCRIPTDIR source=../workstation/env.sh
. jobs/workstation/env.sh
full=1
for a in "$@"; do
  case $a in --quick | --status | --report | --plan | --out | -h | --help) full=0 ;; esac
done
# the full plan builds and fetches the corpus first, as the other experiments do
if [ "$full" = 1 ]; then bash jobs/workstation/setup.sh; fi
PYTHONPATH=jobs/experiments exec /usr/bin/python3 -m protocol "$@"
