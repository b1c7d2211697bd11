# Shared by tests/cli/hf.sh, hf_llama.sh and hf_bert.sh (sourced after SPROUT and LOGITS are set):
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
  "$LOGITS" "$2" "$VAL" 4 "$T/logits.bin" || return 1 # (set -e does not hold in a || list)
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

# eval batches by /config's train.micro_batch, which moves the last digit of the loss: an import
# is compared by eval with the trained config, by logits and /model otherwise
same() { # CKPT IMPORTED [noeval]   (needs $VAL)
  $PY - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert sorted(a["model"]) == sorted(b["model"]), (sorted(a["model"]), sorted(b["model"]))
for k in a["model"]:
    assert np.array_equal(a["model"][k][()].view(np.uint32), b["model"][k][()].view(np.uint32)), k
for k in ("block", "vocab", "seq_len", "d_model", "n_head", "d_ff", "n_layer", "norm_eps",
          "rope_theta", "tie_head"):
    assert a["spec"].attrs[k] == b["spec"].attrs[k], (k, a["spec"].attrs[k], b["spec"].attrs[k])
assert b["train"].attrs["step"] == 0
PY
  "$LOGITS" "$1" "$VAL" 4 "$T/l1.bin" && "$LOGITS" "$2" "$VAL" 4 "$T/l2.bin"
  cmp "$T/l1.bin" "$T/l2.bin" || die "$2: logits differ"
  [ $# = 3 ] && return 0
  local A B
  A=$("$SPROUT" eval "$1" --data "$VAL"); B=$("$SPROUT" eval "$2" --data "$VAL")
  [ "$A" = "$B" ] || die "$2: eval '$A' vs '$B'"
  echo "  eval: $B"
}
