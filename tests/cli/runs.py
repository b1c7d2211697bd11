"""Reading the runs of the CLI tests: metrics lines, growth events, final checkpoints, and a
counter of checks. Imported by the Python parts of tests/cli/*.sh (run dir as their argument)."""
import glob
import json
import re

import h5py
import numpy as np

TIMING = {"ms", "tok_per_s", "event_ms", "time"}  # wall-clock fields: the only ones no rerun reproduces


def strip_timing(raw):
    """a metrics line (bytes) less its wall-clock fields: what a bit-exact rerun reproduces"""
    return re.sub(rb',"(' + "|".join(sorted(TIMING)).encode() + rb')":[^,}]*', b"", raw)


class Runs:
    def __init__(self, root):
        self.root = root
        self.ok = self.bad = 0

    def rows(self, n):
        return [json.loads(line) for line in open(f"{self.root}/{n}/metrics.jsonl")]

    def steps(self, n):
        return {r["step"]: r for r in self.rows(n) if "event" not in r}

    def growth(self, n):
        return [r for r in self.rows(n) if r.get("event") == "growth"]

    def final(self, n):
        f = h5py.File(sorted(glob.glob(f"{self.root}/{n}/ckpt/step_*.h5"))[-1], "r")
        return {g + k: f[g][k][()] for g in ("model/", "optim/m/", "optim/v/") for k in f[g]}

    def raw_steps(self, n):
        """step -> the step's metrics line as bytes, less the wall-clock fields: what a bit-exact
        rerun must reproduce exactly"""
        out = {}
        for line in open(f"{self.root}/{n}/metrics.jsonl", "rb"):
            if b'"event"' in line:
                continue
            step = json.loads(line)["step"]
            out[step] = strip_timing(line)
        return out

    def same_weights(self, a, b):
        wa, wb = self.final(a), self.final(b)
        return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)

    def rel(self, a, b, lo, hi):
        """max relative loss difference of runs a and b over steps lo..hi"""
        sa, sb = self.steps(a), self.steps(b)
        return max(abs(sa[i]["loss"] - sb[i]["loss"]) / abs(sa[i]["loss"]) for i in range(lo, hi + 1))

    def check(self, cond, msg):
        if cond:
            self.ok += 1
        else:
            self.bad += 1
            print("FAIL:", msg)

    def finish(self, name):
        print(f"{name}: {self.ok} passed, {self.bad} failed")
        return 1 if self.bad else 0


def strip(r):
    return {k: v for k, v in r.items() if k not in TIMING}
