#!/usr/bin/env bash
# Speed against an earlier commit: builds REV in a temporary worktree (Release) and times
# `sprout bench` of both binaries on the same configs, interleaved (the order alternates each
# round, old-new then new-old, so that a drift in the machine's speed falls on both), in every
# precision asked for. Prints per setting the median tok/s of each binary, the ratio new/old of
# the medians and the range of the per-round ratios (below 1: a regression), and with both
# precisions each binary's bf16 / fp32 ratio per round. Timings are never asserted anywhere.
#
# usage: jobs/bench/regress.sh [REV (default HEAD~1)] [ROUNDS (default 5)] [STEPS per run (default 6)]
# env:   SPROUT (the new binary, default build/sprout), SHAPES (default "bench": names of
#        configs/*.yaml), PRECISIONS (default "fp32 bf16"), THREADS (default 1),
#        KEEP_OPENBLAS_ENV=1 to keep OPENBLAS_CORETYPE (as in compare.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
REV=${1:-HEAD~1}
ROUNDS=${2:-5}
STEPS=${3:-6}
SHAPES=${SHAPES:-bench}
PRECISIONS=${PRECISIONS:-fp32 bf16}
THREADS=${THREADS:-1}
# shellcheck source=common.sh
. jobs/bench/common.sh
if [ "${KEEP_OPENBLAS_ENV:-0}" != 1 ]; then unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; fi
unset OPENBLAS_NUM_THREADS OMP_NUM_THREADS
if [ ! -x "$SPROUT" ]; then
  echo "regress: $SPROUT not found: build first (cmake --build build)" >&2
  exit 2
fi
sha=$(git rev-parse --verify "$REV^{commit}") || {
  echo "regress: $REV is not a commit" >&2
  exit 2
}
wt=$(mktemp -d)
cleanup() {
  rm -f "$OUT"
  git worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
}
trap cleanup EXIT
echo "regress: building ${sha:0:10} ($(git log -1 --format=%s "$sha" | cut -c1-60)) in $wt" >&2
git worktree add --detach "$wt" "$sha" >/dev/null 2>&1
cmake -S "$wt" -B "$wt/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$wt/build" -j"$(nproc)" --target sprout >/dev/null
OLD=$wt/build/sprout

one() { # label binary shape precision
  "$2" bench "configs/$3.yaml" --steps "$STEPS" --set run.threads="$THREADS" \
    --set run.precision="$4" 2>/dev/null | grep '^{' |
    sed "s/^{/{\"bin\":\"$1\",\"shape\":\"$3\",\"prec\":\"$4\",\"round\":$r,/" >>"$OUT"
}
for r in $(seq "$ROUNDS"); do
  for shape in $SHAPES; do
    for prec in $PRECISIONS; do
      echo "round $r/$ROUNDS, $shape, $prec" >&2
      if [ $((r % 2)) = 1 ]; then
        one old "$OLD" "$shape" "$prec"
        one new "$SPROUT" "$shape" "$prec"
      else
        one new "$SPROUT" "$shape" "$prec"
        one old "$OLD" "$shape" "$prec"
      fi
    done
  done
done

/usr/bin/python3 - "$OUT" "${sha:0:10}" "$(git rev-parse --short=10 HEAD)" "$THREADS" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"old {sys.argv[2]}, new the given binary (HEAD {sys.argv[3]}), {sys.argv[4]} thread(s); "
      f"{len(rows)} runs, medians")
print(f"{'shape':<18}{'prec':<6}{'old tok/s':>10}{'new tok/s':>10}{'new/old':>9}  per-round ratios")
for key in sorted({(r["shape"], r["prec"]) for r in rows}):
    R = [r for r in rows if (r["shape"], r["prec"]) == key]
    by = {b: {r["round"]: r["tok_per_s"] for r in R if r["bin"] == b} for b in ("old", "new")}
    o, n = statistics.median(by["old"].values()), statistics.median(by["new"].values())
    per = sorted(by["new"][k] / by["old"][k] for k in by["new"] if k in by["old"])
    print(f"{key[0]:<18}{key[1]:<6}{o:>10.0f}{n:>10.0f}{n / o:>8.3f}x  "
          f"{per[0]:.3f}..{per[-1]:.3f} (median {statistics.median(per):.3f})")
# with both precisions: each binary's bf16 / fp32 speed, per round (the runs of a round are
# adjacent, so the ratio is taken on one machine state)
for shape in sorted({r["shape"] for r in rows}):
    for b in ("old", "new"):
        tps = {(r["round"], r["prec"]): r["tok_per_s"] for r in rows
               if r["shape"] == shape and r["bin"] == b}
        rounds = {k for k, _ in tps}
        per = sorted(tps[k, "bf16"] / tps[k, "fp32"] for k in rounds
                     if (k, "bf16") in tps and (k, "fp32") in tps)
        if per:
            print(f"{shape} {b}: bf16 / fp32 per round {per[0]:.3f}..{per[-1]:.3f}, "
                  f"median {statistics.median(per):.3f}")
EOF
