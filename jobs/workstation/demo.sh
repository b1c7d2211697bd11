#!/usr/bin/env bash
# The default job, end to end: install, build, fetch and prepare the Brown corpus, train
# configs/tiny.yaml on 2 ranks, checkpoint, and print a sample. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs/workstation/setup.sh
jobs/workstation/train.sh -n 2 configs/tiny.yaml "$@"
CKPT=runs/tiny/ckpt/$(cat runs/tiny/ckpt/latest)
build/sprout eval "$CKPT" --data data/brown/val.bin
echo "----- sample -----"
build/sprout sample "$CKPT" --prompt "The jury said" --tokens 400 --temperature 0.8
