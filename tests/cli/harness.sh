#!/usr/bin/env bash
# The growth-measurement harness (jobs/experiments/compare.sh --quick), a test of the harness,
# not of growth: (1) the quick plan runs every stage to completion and writes the report
# (README.md, summary.json with its schema, the two plots); --status and --report work; a second
# start runs nothing; a finished run whose final checkpoint is damaged is made again, alone;
# --eval-sprout evaluates every finished run again, once, keeping the earlier figures. (2) In a fresh queue, a rank is killed inside a checkpoint of a growth run
# and then the harness itself (kill -9, from the MPI launcher wrapper, so the point is always
# the same); the restarted queue finishes without re-running any finished run, and every run's
# final weights, moments, metrics (less the wall-clock fields) and losses equal the first
# queue's bit for bit, the interrupted run's included.
# usage: harness.sh SPROUT_BINARY MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
SPROUT=$1; shift
MPIEXEC=("$@")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
C=("$ROOT/jobs/experiments/compare.sh" --quick --sprout "$SPROUT")
VICTIM=stack-t0.5-s1 # 40 steps, checkpoints every 10, grows before step 20

# 1. the whole quick plan
bash "${C[@]}" --out "$T/a" --mpirun "${MPIEXEC[*]}" >"$T/a.log" 2>&1 ||
  { echo "FAIL: the quick plan failed"; tail -30 "$T/a.log"; exit 1; }
bash "${C[@]}" --out "$T/a" --status >"$T/a.status" 2>&1 ||
  { echo "FAIL: --status"; cat "$T/a.status"; exit 1; }
cp "$T/a/manifest.jsonl" "$T/a.manifest"
bash "${C[@]}" --out "$T/a" --mpirun "${MPIEXEC[*]}" >"$T/a2.log" 2>&1 ||
  { echo "FAIL: the second start failed"; tail -30 "$T/a2.log"; exit 1; }
cmp -s "$T/a/manifest.jsonl" "$T/a.manifest" || { echo "FAIL: a second start ran runs"; exit 1; }
# a finished run whose final checkpoint no longer verifies is made again, and only that one:
# the baseline's seed 2 at the chosen peak LR
DAMAGED=$(/usr/bin/python3 -c 'import json, sys; print("base-lr%g-s2" % json.load(open(sys.argv[1]))["lr"]["value"])' "$T/a/decisions.json")
F=$T/a/runs/$DAMAGED/ckpt/step_00000040.h5
[ -f "$F" ] || { echo "FAIL: $F is missing"; exit 1; }
head -c 20000 "$F" >"$F.cut" && mv "$F.cut" "$F"
bash "${C[@]}" --out "$T/a" --mpirun "${MPIEXEC[*]}" >"$T/a2.log" 2>&1 ||
  { echo "FAIL: the start after damage failed"; tail -30 "$T/a2.log"; exit 1; }
# an evaluation binary given later evaluates every finished run again, once, and keeps the
# earlier figures (the same binary here, so the figures must not change)
cp "$T/a/manifest.jsonl" "$T/a.manifest2"
for f in "$T"/a/runs/*/done.json; do cp "$f" "$f.before"; done
bash "${C[@]}" --out "$T/a" --mpirun "${MPIEXEC[*]}" --eval-sprout "$SPROUT" --eval-commit test-eval \
  >"$T/a4.log" 2>&1 || { echo "FAIL: the start with --eval-sprout failed"; tail -30 "$T/a4.log"; exit 1; }
cp "$T/a/manifest.jsonl" "$T/a.manifest3"
bash "${C[@]}" --out "$T/a" --mpirun "${MPIEXEC[*]}" >"$T/a5.log" 2>&1 ||
  { echo "FAIL: the start after --eval-sprout failed"; tail -30 "$T/a5.log"; exit 1; }
cmp -s "$T/a/manifest.jsonl" "$T/a.manifest3" || { echo "FAIL: a run was evaluated twice"; exit 1; }
rm "$T/a/README.md"
bash "${C[@]}" --out "$T/a" --report >"$T/a3.log" 2>&1 || { echo "FAIL: --report"; exit 1; }

# 2. the same plan in a fresh queue; the launcher wrapper kills a rank inside the victim's
# step-20 checkpoint, then the harness (its parent), once
cat >"$T/wrap.sh" <<EOF
#!/usr/bin/env bash
case "\$*" in
  *"/runs/$VICTIM/config.yaml"*)
    if [ ! -e "$T/killed" ]; then
      touch "$T/killed"
      SPROUT_FAULT_KILL_IN_CKPT=20 ${MPIEXEC[*]} -x SPROUT_FAULT_KILL_IN_CKPT "\$@"
      kill -9 \$PPID
      exit 1
    fi ;;
esac
exec ${MPIEXEC[*]} "\$@"
EOF
bash "${C[@]}" --out "$T/b" --mpirun "bash $T/wrap.sh" >"$T/b1.log" 2>&1
rc=$?
if [ ! -e "$T/killed" ] || [ "$rc" = 0 ]; then
  echo "FAIL: the harness was not killed (exit $rc)"; tail "$T/b1.log"; exit 1
fi
ls "$T/b/runs/$VICTIM/ckpt/"step_00000010.h5 >/dev/null || { echo "FAIL: no step-10 checkpoint"; exit 1; }
[ ! -e "$T/b/runs/$VICTIM/ckpt/step_00000020.h5" ] || { echo "FAIL: the step-20 checkpoint was committed"; exit 1; }
for f in "$T"/b/runs/*/done.json; do cp "$f" "$f.before"; done
bash "${C[@]}" --out "$T/b" --mpirun "${MPIEXEC[*]}" >"$T/b2.log" 2>&1 ||
  { echo "FAIL: the restarted queue failed"; tail -30 "$T/b2.log"; exit 1; }
grep -q "resumed from .*/$VICTIM/ckpt/step_00000010.h5" "$T/b/runs/$VICTIM/train.log" ||
  { echo "FAIL: $VICTIM did not resume from its step-10 checkpoint"; exit 1; }

PYTHONPATH="$(dirname "$0")" /usr/bin/python3 - "$T" "$VICTIM" "$DAMAGED" <<'PY'
import glob, json, os, sys
import h5py, numpy as np
from runs import Runs, strip
T, victim, damaged = sys.argv[1:4]
R = Runs(T)
def manifest(p):
    return [json.loads(l) for l in open(p)]
# the report and its schema
s = json.load(open(f"{T}/a/summary.json"))
keys = {"name", "seeds", "final_loss", "final_loss_sd", "saving", "saving_ci_low", "saving_ci_high",
        "speedup", "discount", "learning_gain", "learning_gain_ci_low", "wall_s"}
names = {m["name"] for m in s["methods"]}
R.check(all(keys <= set(m) for m in s["methods"]), "summary.json misses keys")
R.check({"baseline", "stack-t0.25", "stack-t0.5", "zero-t0.5", "widen_zero-t0.5", "vcycle-t0.25",
         "sanity-2"} <= names, f"summary.json arms: {sorted(names)}")
base = next(m for m in s["methods"] if m["name"] == "baseline")
R.check(base["seeds"] == [1, 2] and base["final_loss_sd"] is not None, f"baseline {base}")
# G_learn's arm trains with its own binary (sprout: own), recorded and named in the report
R.check(any(n.startswith("learn-t") for n in names) and os.path.exists(f"{T}/a/arms/learn.bin")
        and json.load(open(f"{T}/a/arms/learn.json"))["commit"], "the learn arm and its own binary")
lr_runs = [os.path.basename(os.path.dirname(p)) for p in glob.glob(f"{T}/a/runs/learn-t*/done.json")]
R.check(len(lr_runs) >= 1 and all(json.load(open(f"{T}/a/runs/{n}/done.json"))["commit"] ==
        json.load(open(f"{T}/a/arms/learn.json"))["commit"] for n in lr_runs), f"learn runs {lr_runs}")
R.check(len(s["frontier"]) >= 3, "frontier has fewer than 3 points")
for m in s["methods"]:  # fractions, not percentages
    for k in ("saving", "discount", "learning_gain"):
        R.check(m[k] is None or -5 < m[k] < 1, f"{m['name']}.{k} = {m[k]}")
md = open(f"{T}/a/README.md").read()
R.check("## G_stack 2→8" in md and "## Sanity" in md and "DecoIP.sh" in md, "README.md sections")
# every confirmed arm has its seeds: the target is read, one way or the other
R.check("## The target" in md and any(x in md for x in (
    "**The target is reached.**", "**The target is not reached.**", "No confirmed arm has")),
    "README.md: the target's verdict")
R.check(all(os.path.getsize(f"{T}/a/{p}") > 1000 for p in ("loss-flops.png", "saving-tau.png")),
        "plots missing")
st = open(f"{T}/a.status").read()
R.check(" 0 left" not in st and "done" in st and "ETA" in st and "plan total" in st, "--status")
dec = json.load(open(f"{T}/a/decisions.json"))
R.check(all(dec[k]["split"] == "tune" for k in ("lr", "tau", "best")), "choices not on tune split")
# after the damage, only the damaged run was made again
new = manifest(f"{T}/a/manifest.jsonl")[len(manifest(f"{T}/a.manifest")):]
R.check([e["run"] for e in new if e["event"] == "start"] == [damaged], f"re-made: {new}")
# the re-evaluation: each finished run once, figures unchanged and the earlier ones kept
new = manifest(f"{T}/a.manifest3")[len(manifest(f"{T}/a.manifest2")):]
# (the learn arm's own binary evaluates it: --eval-sprout does not apply to it)
fin = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(f"{T}/a/runs/*/done.json.before")
             if not os.path.basename(os.path.dirname(p)).startswith("learn-"))
R.check(len(fin) >= 15 and sorted(e["run"] for e in new) == fin and
        all(e["event"] == "reeval" for e in new), f"re-evaluated: {[e['run'] for e in new]}")
for n in fin:
    old, d = (json.load(open(f"{T}/a/runs/{n}/done.json{x}")) for x in (".before", ""))
    ks = [k for k in d if k.startswith("loss_")]
    R.check(len(ks) == 6 and all(d[k] == old[k] for k in ks), f"{n}: re-evaluated figures changed")
    R.check(d["eval_commit"] == "test-eval" and d["evals_before"] == [
        dict({k: old[k] for k in ks}, eval_commit=old["eval_commit"])], f"{n}: evals_before")
R.check("Evaluated by a separate binary, test-eval" in md, "README.md: the evaluation binary")
R.check("Arms added after the queue froze its binary" in md and "learn at " in md,
        "README.md: the learn arm's own binary")
# the restarted queue: finished runs not re-run, the victim tried twice
mb = manifest(f"{T}/b/manifest.jsonl")
before = [os.path.basename(os.path.dirname(p)) for p in glob.glob(f"{T}/b/runs/*/done.json.before")]
R.check(len(before) >= 5, f"only {len(before)} runs had finished before the kill")
for n in before:
    R.check(sum(1 for e in mb if e["run"] == n and e["event"] == "start") == 1, f"{n} re-run")
    R.check(open(f"{T}/b/runs/{n}/done.json").read() == open(f"{T}/b/runs/{n}/done.json.before").read(),
            f"{n}: done.json rewritten")
R.check(sum(1 for e in mb if e["run"] == victim and e["event"] == "start") == 2, "victim attempts")
# every run equals the uninterrupted queue's, bit for bit
# (which arms are confirmed depends on the losses, so on the BLAS kernels: compare what ran)
done = lambda q: sorted(n for n in os.listdir(f"{T}/{q}/runs") if os.path.exists(f"{T}/{q}/runs/{n}/done.json"))
runs_a = done("a")
R.check(len(runs_a) >= 15 and runs_a == done("b"), "the two queues finished different runs")
def final(q, n):
    f = sorted(glob.glob(f"{T}/{q}/runs/{n}/ckpt/step_*.h5"))[-1]
    with h5py.File(f, "r") as h:
        return os.path.basename(f), {g + k: h[g][k][()] for g in ("model/", "optim/m/", "optim/v/") for k in h[g]}
def steps(q, n):
    out = {}
    for l in open(f"{T}/{q}/runs/{n}/metrics.jsonl"):
        r = json.loads(l)
        if r.get("event") == "restart":
            out = {k: v for k, v in out.items() if k <= r["step"]}
        elif "event" not in r:
            out[r["step"]] = strip(r)
    return out
LOSS = ("loss_tune", "loss_report", "loss_val", "flops", "tokens", "train_loss", "curve")
for n in runs_a:
    (fa, wa), (fb, wb) = final("a", n), final("b", n)
    R.check(fa == fb and wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa),
            f"{n}: final checkpoint differs")
    R.check(steps("a", n) == steps("b", n), f"{n}: metrics differ")
    da, db = (json.load(open(f"{T}/{q}/runs/{n}/done.json")) for q in "ab")
    R.check(all(da[k] == db[k] for k in LOSS), f"{n}: done.json losses differ")
sys.exit(R.finish("harness"))
PY
