#!/usr/bin/env bash
# Bad inputs end with one clear line naming the file or key, and exit status 2.
# usage: bad_inputs.sh SPROUT_BINARY
set -u
SPROUT=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/expect.sh"

printf 'model: {d_modle: 3}\n' >"$T/unknown.yaml"
printf 'model:\n  n_layer: many\n' >"$T/type.yaml"
printf 'model: {n_head: 7}\n' >"$T/range.yaml"
printf 'XXXXXXXX' >"$T/badmagic.bin"; head -c 40 /dev/zero >>"$T/badmagic.bin"
# a valid header saying 1000 tokens, followed by 10
printf 'SPRTOK01\x00\x01\x00\x00\xe8\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' >"$T/trunc.bin"
head -c 20 /dev/zero >>"$T/trunc.bin"
# vocab 300 > the model's 256: 600 tokens of value 1
printf 'SPRTOK01\x2c\x01\x00\x00\x58\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' >"$T/bigvocab.bin"
for i in $(seq 600); do printf '\x01\x00'; done >>"$T/bigvocab.bin"
printf 'model: {n_layer: 4}\ngrowth:\n  - {at_step: 1, op: ligo}\n' >"$T/grow.yaml"
mkdir -p "$T/empty"
: >"$T/empty.txt"

expect 2 "no_such.yaml" -- "$SPROUT" train "$T/no_such.yaml"
expect 2 "unknown key 'model.d_modle'" -- "$SPROUT" train "$T/unknown.yaml"
expect 2 "type.yaml:2: model.n_layer" -- "$SPROUT" train "$T/type.yaml"
expect 2 "model.n_head" -- "$SPROUT" train "$T/range.yaml"
expect 2 "train.lr" -- "$SPROUT" train "$T/range.yaml" --set model.n_head=6 --set train.lr=-1
expect 2 "unknown key 'train.nope'" -- "$SPROUT" train "$T/range.yaml" --set train.nope=1
expect 2 "model.block: 't5' is not a block kind .gpt2, llama, bert." -- "$SPROUT" train "$T/range.yaml" --set model.n_head=6 --set model.block=t5
expect 2 "model.tie_head: gpt2's head is always tied" -- "$SPROUT" train "$T/range.yaml" --set model.n_head=6 --set model.tie_head=false
expect 2 "train.objective: 'mlm' is not an objective" -- "$SPROUT" train "$T/range.yaml" --set model.n_head=6 --set train.objective=mlm
expect 2 "growth\[0\].op: 'ligo' is not a growth operator .stack, direct" -- "$SPROUT" train "$T/grow.yaml"
expect 2 "missing.bin" -- "$SPROUT" train "$T/range.yaml" --set model.n_head=6 --set data.train="$T/missing.bin"
expect 2 "badmagic.bin.*magic" -- "$SPROUT" train "$T/range.yaml" --set model.n_head=6 --set data.train="$T/badmagic.bin"
expect 2 "trunc.bin.*truncated" -- "$SPROUT" train "$T/range.yaml" --set model.n_head=6 --set data.train="$T/trunc.bin"
expect 2 "bigvocab.bin.*vocab" -- "$SPROUT" train "$T/range.yaml" --set model.n_head=6 --set data.train="$T/bigvocab.bin"
expect 2 "empty" -- "$SPROUT" prepare brown "$T/empty" --out "$T/o"
expect 2 "no_dir" -- "$SPROUT" prepare brown "$T/no_dir" --out "$T/o"
expect 2 "empty.txt" -- "$SPROUT" prepare text "$T/empty.txt" --out "$T/o"
expect 2 "no_ckpt.h5" -- "$SPROUT" sample "$T/no_ckpt.h5"
expect 2 "badmagic.bin" -- "$SPROUT" inspect "$T/badmagic.bin"
expect 2 "unknown command" -- "$SPROUT" frobnicate
expect 2 "--tokens" -- "$SPROUT" sample x.h5 --tokens lots
expect 0 "" -- "$SPROUT" train --help

echo "cli_bad_inputs: $pass passed, $fail failed"
[ "$fail" = 0 ]
