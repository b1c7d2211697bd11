#!/bin/sh
# Self-test of the parity checker without the C side: a dump written by PyTorch itself
# (make_dump.py) must pass check_parity.py; the same dump with one gradient value scaled by 1.01
# must fail (exit 1) naming that tensor; a dump missing a dataset must be rejected (exit 2).
set -u
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sprout_checker.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
fail() { echo "test_checker: FAIL: $*"; exit 1; }

$PY "$HERE/make_dump.py" "$TMP/good.h5" || fail "make_dump.py"
$PY "$HERE/check_parity.py" "$TMP/good.h5" > "$TMP/good.log" 2>&1
rc=$?
cat "$TMP/good.log"
[ $rc -eq 0 ] || fail "clean dump: check_parity.py exited $rc, expected 0"

# corrupt the largest entry of one gradient tensor (so the change is 1% of max|b|)
NAME=grad/transformer.h.1.attn.c_attn.weight
cp "$TMP/good.h5" "$TMP/bad.h5"
$PY - "$TMP/bad.h5" "$NAME" <<'EOF' || fail "corrupting the dump"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    d = f[sys.argv[2]]
    a = d[()]
    i = np.unravel_index(np.abs(a).argmax(), a.shape)
    a[i] *= 1.01
    d[...] = a
EOF
$PY "$HERE/check_parity.py" "$TMP/bad.h5" > "$TMP/bad.log" 2>&1
rc=$?
cat "$TMP/bad.log"
[ $rc -eq 1 ] || fail "corrupted dump: check_parity.py exited $rc, expected 1"
grep "^$NAME .*FAIL" "$TMP/bad.log" > /dev/null || fail "corrupted tensor $NAME not reported"
grep "^parity: .* 1 failed" "$TMP/bad.log" > /dev/null || fail "expected exactly 1 failure"

# a missing dataset is bad input
cp "$TMP/good.h5" "$TMP/missing.h5"
$PY -c "import sys, h5py; del h5py.File(sys.argv[1], 'r+')['out/logits']" "$TMP/missing.h5" \
    || fail "deleting a dataset"
$PY "$HERE/check_parity.py" "$TMP/missing.h5" > "$TMP/missing.log" 2>&1
rc=$?
cat "$TMP/missing.log"
[ $rc -eq 2 ] || fail "dump without /out/logits: exit $rc, expected 2"
grep "out/logits" "$TMP/missing.log" > /dev/null || fail "missing dataset not named"

echo "test_checker: OK"
