#!/usr/bin/env bash
# The growth-measurement harness on another block kind (SP_BLOCK=llama or bert, see kind.sh): a
# plan made from configs/protocol/quick.yaml with model.block set (and, for bert, its vocab and
# the masked-LM objective) runs every stage to completion with G_stack, G_zero, widen_zero, Apollo
# and RaPTr and writes its report. Checked: every run trained the kind (its final checkpoint's
# /spec says so) with the kind's objective (its config), and every arm of the plan that ran is in
# summary.json with a finite loss. A test of the harness, not of growth.
# usage: SP_BLOCK=KIND harness_kind.sh SPROUT_BINARY MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
SPROUT=$1; shift
MPIEXEC=("$@")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=kind.sh
. "$(dirname "$0")/kind.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
[ "$KIND" != gpt2 ] || { echo "harness_kind: gpt2 is cli_harness's"; exit 2; }

# the quick plan with the kind's model; the base stays the repository's protocol base
/usr/bin/python3 - "$ROOT/configs/protocol/quick.yaml" "$T/plan.yaml" "$KIND" "$VOCAB" "$OBJECTIVE" <<'PY'
import sys, yaml
src, dst, kind, vocab, objective = sys.argv[1:6]
p = yaml.safe_load(open(src))
p["base_overrides"]["model"].update(block=kind, vocab=int(vocab))
p["base_overrides"]["train"]["objective"] = objective
p["methods"] = [
    {"name": "stack", "label": "G_stack 2→8", "overlay": "stack.yaml", "taus": "sweep"},
    {"name": "zero", "label": "G_zero 2→8", "overlay": "zero.yaml", "tau_from": "stack"},
    {"name": "widen_zero", "label": "widen_zero d16→32", "overlay": "widen_zero.yaml", "tau_from": "stack"},
    {"name": "apollo", "label": "Apollo", "overlay": "apollo.yaml"},
    {"name": "raptr", "label": "RaPTr", "overlay": "raptr.yaml"},
]
yaml.safe_dump(p, open(dst, "w"), sort_keys=False, allow_unicode=True)
PY
C=("$ROOT/jobs/experiments/compare.sh" --plan "$T/plan.yaml" --sprout "$SPROUT")
bash "${C[@]}" --out "$T/q" --mpirun "${MPIEXEC[*]}" >"$T/q.log" 2>&1 ||
  { echo "FAIL: the $KIND plan failed"; tail -30 "$T/q.log"; exit 1; }

PYTHONPATH="$(dirname "$0")" /usr/bin/python3 - "$T" "$KIND" "$OBJECTIVE" <<'PY'
import glob, json, math, os, sys
import h5py, yaml
from runs import Runs
T, kind, objective = sys.argv[1:4]
R = Runs(T)
s = json.load(open(f"{T}/q/summary.json"))
names = {m["name"] for m in s["methods"]}
want = {"baseline", "stack-t0.25", "stack-t0.5", "apollo", "raptr", "sanity-2"}
ran = {m["name"] for m in s["methods"] if m["seeds"]}  # an arm the choices skipped has none
R.check(want <= ran and all(any(n.startswith(p) for n in ran) for p in ("zero-", "widen_zero-")),
        f"summary.json arms run: {sorted(ran)}")
for m in s["methods"]:
    if m["seeds"]:
        R.check(m["final_loss"] is not None and math.isfinite(m["final_loss"]), f"{m['name']}: {m}")
runs = sorted(n for n in os.listdir(f"{T}/q/runs") if os.path.exists(f"{T}/q/runs/{n}/done.json"))
R.check(len(runs) >= 10, f"only {len(runs)} runs finished")
for n in runs:
    f = sorted(glob.glob(f"{T}/q/runs/{n}/ckpt/step_*.h5"))[-1]
    with h5py.File(f, "r") as h:
        blk = h["spec"].attrs.get("block")
        blk = blk.decode() if isinstance(blk, bytes) else str(blk)
        R.check(blk == kind, f"{n}: /spec block {blk!r}")
    cfg = yaml.safe_load(open(f"{T}/q/runs/{n}/config.yaml"))
    R.check(cfg["train"].get("objective", "causal") == objective, f"{n}: objective {cfg['train']}")
sys.exit(R.finish(f"harness on {kind}"))
PY
