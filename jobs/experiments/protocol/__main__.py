"""compare.sh's driver: python3 -m protocol [options] (run from jobs/experiments/)."""
import argparse
import fcntl
import os
import shlex
import shutil
import sys

from . import data as pdata
from .report import Report
from .runner import Queue, git_commit, now, read_json, write_json


def main():
    ap = argparse.ArgumentParser(prog="compare.sh", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="the tiny plan (configs/protocol/quick.yaml)")
    ap.add_argument("--plan", help="a plan file (default configs/protocol/full.yaml)")
    ap.add_argument("--out", help="runs and state (default runs/protocol, runs/protocol-quick)")
    ap.add_argument("--status", action="store_true", help="what is done, running and left; ETA")
    ap.add_argument("--report", action="store_true", help="only regenerate the report")
    ap.add_argument("--report-dir", help="where the report goes (default docs/results for the "
                    "full plan in runs/protocol, else OUT)")
    ap.add_argument("--sprout", help="the binary to copy into OUT at the first start (build/sprout)")
    ap.add_argument("--eval-sprout", metavar="BIN", help="evaluate with BIN from now on (copied "
                    "into OUT); finished runs another binary evaluated are evaluated again")
    ap.add_argument("--eval-commit", metavar="LABEL", help="what --eval-sprout was built from "
                    "(default: this checkout's commit)")
    ap.add_argument("--mpirun", default="mpirun --oversubscribe --bind-to none",
                    help="the MPI launcher and its flags, before -n (default: %(default)s)")
    a = ap.parse_args()
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "../../.."))
    plan = a.plan or os.path.join(root, "configs/protocol", "quick.yaml" if a.quick else "full.yaml")
    plan = os.path.abspath(plan)
    default_out = "runs/protocol-quick" if a.quick else "runs/protocol"
    out = os.path.abspath(a.out or os.path.join(root, default_out))
    if a.report_dir:
        rdir = os.path.abspath(a.report_dir)
    elif not a.quick and not a.out and not a.plan:
        rdir = os.path.join(root, "docs/results")
    else:
        rdir = out
    if not os.path.exists(plan):
        print(f"compare: {plan}: no such plan file", file=sys.stderr)
        return 2
    fresh = not os.path.exists(os.path.join(out, "state.json"))
    if fresh and a.status:  # the plan as it would start: nothing done, its cost
        data = {k: f"(not made yet: {k})" for k in ("train", "val", "tune", "report")}
        return Queue(out, plan, root, None, [], dict(data, hashes={})).status()
    os.makedirs(os.path.join(out, "runs"), exist_ok=True)
    lock = open(os.path.join(out, "lock"), "w")
    if not (a.status or a.report):
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            print(f"compare: another compare.sh is running on {out}", file=sys.stderr)
            return 2
    binary = os.path.join(out, "sprout.bin")
    if not os.path.exists(binary):  # one binary for the whole queue, even if build/ changes
        src = a.sprout or os.path.join(root, "build/sprout")
        if not os.path.exists(src):
            print(f"compare: {src}: no sprout binary (build first)", file=sys.stderr)
            return 2
        shutil.copy2(src, binary + ".tmp")
        os.replace(binary + ".tmp", binary)
        write_json(os.path.join(out, "commit.json"), {"commit": git_commit(root)})
    if a.eval_sprout:
        if a.status or a.report:
            print("compare: --eval-sprout goes with a run of the queue, not --status or --report",
                  file=sys.stderr)
            return 2
        if not os.access(a.eval_sprout, os.X_OK):
            print(f"compare: {a.eval_sprout}: not an executable sprout binary", file=sys.stderr)
            return 2
        ebin = os.path.join(out, "sprout-eval.bin")
        shutil.copy2(a.eval_sprout, ebin + ".tmp")
        os.replace(ebin + ".tmp", ebin)
        write_json(os.path.join(out, "eval-commit.json"),
                   {"commit": a.eval_commit or git_commit(root), "time": now()})
    state = read_json(os.path.join(out, "state.json"))
    if state is None:
        from .plan import load_yaml
        kind = load_yaml(plan)["data"]
        d = pdata.prepare(kind, binary, root, out)
        d["hashes"] = {d[k]: pdata.sha256(d[k]) for k in ("train", "val", "tune", "report")}
        state = {"plan": plan, "data": d}
        write_json(os.path.join(out, "state.json"), state)
    elif os.path.abspath(state["plan"]) != plan:
        print(f"compare: {out} holds the queue of {state['plan']}, not {plan}", file=sys.stderr)
        return 2
    q = Queue(out, plan, root, binary, shlex.split(a.mpirun), state["data"],
              own_src=a.sprout or os.path.join(root, "build/sprout"))
    if a.status:
        return q.status()
    rc = 0
    if not a.report:
        rc = q.run()
    Report(q, rdir).write()
    print(f"compare: report in {os.path.join(rdir, 'README.md')} and summary.json")
    return rc


sys.exit(main())
