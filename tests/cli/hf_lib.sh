# Shared by tests/cli/hf.sh and hf_llama.sh (sourced after SPROUT, LOGITS and MPIEXEC are set):
# the scratch directory, the pass count, and the export check and bad-import case of both.
set -euo pipefail
SRC=${SPROUT_SOURCE_DIR:?}
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
die() { echo "FAIL: $*" >&2; exit 1; }

# an export DIR against the checkpoint CKPT it came from, on the first 4 windows of $VAL
check() { # DIR CKPT
  "$LOGITS" "$2" "$VAL" 4 "$T/logits.bin"
  $PY "$SRC/tests/torch/check_hf_export.py" "$1" "$2" "$T/logits.bin" "$VAL" 4
}

# $T/FROM crafted into a fault by tests/torch/hf_craft.py: import exits 2 with one line holding
# EXPECTED and writes nothing
bad_from() { # FROM CASE EXPECTED-SUBSTRING
  $PY "$SRC/tests/torch/hf_craft.py" "$T/$1" "$T/bad_$2" "$2"
  set +e
  "$SPROUT" import "$T/bad_$2" --out "$T/bad_$2.h5" 2>"$T/err" >/dev/null; local rc=$?
  set -e
  [ $rc = 2 ] || { cat "$T/err"; die "$2: exit $rc"; }
  [ "$(wc -l <"$T/err")" = 1 ] || { cat "$T/err"; die "$2: not one line"; }
  grep -qF -- "$3" "$T/err" || { cat "$T/err"; die "$2: the message does not name '$3'"; }
  ls "$T" >"$T/ls"; grep -q "^bad_$2.h5" "$T/ls" && die "$2: a file is left"
  echo "  $2: $(cat "$T/err")"
}
