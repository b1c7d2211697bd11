"""Bit-for-bit comparison of runs of the two-node tests.
usage: compare.py RUNDIR A:B[:WHAT] ...
Run B equals run A when every metrics line of B, as bytes less the wall-clock fields, equals A's
line of the same step (a resumed run repeats the steps after its checkpoint), B has a line for
every step A has, the event lines other than restarts are the same, and the final checkpoints
hold the same weights and AdamW moments."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from runs import Runs, strip_timing  # noqa: E402


def lines(R, n):
    """(step or event, line as bytes less the wall-clock fields), restart lines left out"""
    out = []
    for raw in open(f"{R.root}/{n}/metrics.jsonl", "rb"):
        r = json.loads(raw)
        if r.get("event") != "restart":
            out.append((r.get("event", "step"), r["step"], strip_timing(raw)))
    return out


R = Runs(sys.argv[1])
for pair in sys.argv[2:]:
    a, b, *what = pair.split(":")
    la, lb = lines(R, a), lines(R, b)
    ref = {(k, s): raw for k, s, raw in la}
    lines_ok = len(la) >= 20 and all(ref.get((k, s)) == raw for k, s, raw in lb) and {(k, s) for k, s, _ in lb} == set(ref)
    weights_ok = R.same_weights(a, b)
    R.check(lines_ok, f"{b}: metrics lines differ from {a}'s")
    R.check(weights_ok, f"{b}: final weights/moments differ from {a}'s")
    print(f"{b}{' (' + what[0] + ')' if what else ''}: {len(lb)} metrics lines and the final checkpoint "
          f"{'bit-identical to' if lines_ok and weights_ok else 'DIFFER from'} {a}")
sys.exit(R.finish("bit-for-bit"))
