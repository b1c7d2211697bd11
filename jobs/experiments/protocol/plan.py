"""The protocol as a plan: an ordered list of runs, built from a plan file (configs/protocol/
full.yaml, quick.yaml) and the choices made so far (decisions.json). A run is a name, a resolved
config, a seed and optionally a parent run whose final checkpoint it resumes from (segments of
the constant-LR frontier run, cooldown branches). Runs that depend on a choice not made yet (the
peak LR, the growth time, the best arms) are listed as pending, with an estimate of their cost.

Stages, in queue order (docs/experiments.md):
  lr       baseline at each peak LR of the sweep, seed 1          -> choice "lr" (tune split)
  noise    baseline at the chosen LR, every noise seed
  frontier constant-LR run in segments, cooldown branches from each segment's end
  screen   every method at seed 1 (G_stack at every tau)           -> choices "tau", "best"
  sanity   fixed 2- and 4-block models at the baseline's FLOPs
  confirm  baseline and the best arms at every confirm seed
  branches cooldown branches of the best arm (its own annealed curve)
"""
import copy
import hashlib
import json
import math
import os
import re

import yaml


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f) or {}


def merge(a, b):
    """b over a: mappings merged key by key, everything else (lists too) replaced."""
    out = copy.deepcopy(a)
    for k, v in (b or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def resolve(node, env):
    """Strings "=EXPR" in an overlay are expressions of S (steps), B (tokens per step), W
    (warm-up steps) and tau, rounded to an integer."""
    if isinstance(node, dict):
        return {k: resolve(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, env) for v in node]
    if isinstance(node, str) and node.startswith("="):
        return int(round(eval(node[1:], {"__builtins__": {}}, env)))  # plan files are ours
    return node


def fmt_num(x):
    return f"{x:g}"


def block_params(d, ff):
    return 4 * d * d + 2 * d * ff + 9 * d + ff


def flops_per_token(m):
    """6 N_exec + 12 L d T (docs/growth.md): blocks, tied head and final LayerNorm."""
    d, L, V, T = m["d_model"], m["n_layer"], m["vocab"], m["seq_len"]
    ff = m.get("d_ff") or 4 * d
    return 6 * (L * block_params(d, ff) + V * d + 2 * d) + 12 * L * d * T


def n_params(m):
    d, L, V, T = m["d_model"], m["n_layer"], m["vocab"], m["seq_len"]
    ff = m.get("d_ff") or 4 * d
    return L * block_params(d, ff) + V * d + T * d + 2 * d


def start_model(cfg):
    """The model a growth run starts with: n_layer and width divided by the events' factors."""
    m = dict(cfg["model"])
    for ev in cfg.get("growth") or []:
        f = ev.get("factor", 2)
        if ev["op"].startswith(("widen", "decoalesce_width")):
            m["d_model"] //= f
            m["n_head"] //= f
            m["d_ff"] = (m.get("d_ff") or 0) // f
        else:
            m["n_layer"] //= f
    return m


def estimate_flops(cfg, start_step=0):
    """Training FLOPs of the steps start_step..steps: growth events at their token counts, a
    V-cycle charged at full size (an upper bound)."""
    t = cfg["train"]
    B = t["global_batch"] * cfg["model"]["seq_len"]
    steps = t["steps"]
    evs = cfg.get("growth") or []
    if not evs:
        return (steps - start_step) * B * flops_per_token(cfg["model"])
    at = min(steps, max(start_step, math.ceil(evs[0]["at_tokens"] / B)))
    f0, f1 = flops_per_token(start_model(cfg)), flops_per_token(cfg["model"])
    # G_learn's data steps at the event are full steps of the grown model on top of the steps
    learn = evs[0].get("learn_steps", 100) if evs[0]["op"] == "learn" and at >= start_step else 0
    return (at - start_step) * B * f0 + (steps - at + learn) * B * f1


class Run:
    def __init__(self, name, stage, arm, seed, cfg, parent=None, pending=None, tau=None):
        self.name, self.stage, self.arm, self.seed = name, stage, arm, seed
        self.cfg, self.parent, self.pending, self.tau = cfg, parent, pending, tau
        self.own = None  # the method whose own binary trains it (plan key sprout: own)

    @property
    def steps(self):
        return self.cfg["train"]["steps"]

    def est_flops(self, runs):
        start = runs[self.parent].steps if self.parent else 0
        return estimate_flops(self.cfg, start)


class Plan:
    """The runs of a plan file, given the choices made so far."""

    def __init__(self, plan_path, root, data, decisions):
        self.path, self.root = plan_path, root
        self.p = p = load_yaml(plan_path)
        base = merge(load_yaml(os.path.join(root, p["base"])), p.get("base_overrides"))
        self.S, self.W = p["steps"], p["warmup"]
        base = merge(base, {"train": {"steps": self.S, "warmup_steps": self.W,
                                      "decay_fraction": p["decay_fraction"]},
                            "data": {"train": data["train"], "val": data["tune"]}})
        self.base = base
        self.B = base["train"]["global_batch"] * base["model"]["seq_len"]
        self.decisions = decisions
        self.runs = {}
        self.order = []
        self.methods = {m["name"]: m for m in p["methods"]}
        self.build()

    # ---- building blocks ----
    def add(self, run):
        if run.name not in self.runs:
            self.runs[run.name] = run
            self.order.append(run.name)
        return self.runs[run.name]

    def cfg(self, lr, seed, steps=None, overlay=None, tau=None, extra=None):
        c = merge(self.base, {"train": {"lr": lr, "seed": seed}})
        if steps:
            c["train"]["steps"] = steps
        if overlay:
            env = {"S": self.S, "B": self.B, "W": self.W, "tau": tau if tau is not None else 0}
            c = merge(c, resolve(load_yaml(os.path.join(self.root, "configs/protocol/methods",
                                                        overlay)), env))
        return merge(c, extra)

    def chosen(self, key, fallback):
        d = self.decisions.get(key)
        return (d["value"], None) if d else (fallback, key)

    def base_run(self, lr, seed, stage, pending=None):
        return self.add(Run(f"base-lr{fmt_num(lr)}-s{seed}", stage, "baseline", seed,
                            self.cfg(lr, seed), pending=pending))

    def arm_name(self, m, tau):
        return m["name"] if tau is None else f"{m['name']}-t{fmt_num(tau)}"

    def method_run(self, m, tau, seed, lr, stage, pending=None):
        arm = self.arm_name(m, tau)
        r = Run(f"{arm}-s{seed}", stage, arm, seed, self.cfg(lr, seed, overlay=m["overlay"], tau=tau),
                pending=pending, tau=tau)
        return self.add(self.owned(r, m))

    @staticmethod
    def owned(run, m):
        """an arm added after the queue froze its binary trains with its own (runner.binary)"""
        run.own = m["name"] if m.get("sprout") == "own" else None
        return run

    def method_taus(self, m):
        """[(tau, pending)] of a method's screening runs."""
        if m.get("taus") == "sweep":
            return [(t, None) for t in self.p["taus"]]
        if "tau_from" in m:
            t, pend = self.chosen("tau", self.p["taus"][0])
            return [(t, pend)]
        if "taus" in m:
            return [(t, None) for t in m["taus"]]
        return [(None, None)]

    def arms(self):
        """Every screened arm: (arm name, method, tau)."""
        out = []
        for m in self.p["methods"]:
            for tau, _ in self.method_taus(m):
                out.append((self.arm_name(m, tau), m, tau))
        return out

    # ---- the stages ----
    def build(self):
        p, S = self.p, self.S
        for lr in p["lr_sweep"]:
            self.base_run(lr, 1, "lr")
        lr, pend = self.chosen("lr", p["lr_sweep"][len(p["lr_sweep"]) // 2])
        self.lr = lr
        for s in p["noise_seeds"]:
            self.base_run(lr, s, "noise", pend)
        # the frontier: one constant-LR run in segments ending where each branch's decay starts
        fs = p["frontier_seed"]
        df = p["decay_fraction"]
        points = sorted({int(round(T * (1 - df))) for T in p["frontier_budgets"]})
        prev = None
        for pt in points:
            c = self.cfg(lr, fs, steps=pt, extra={"train": {"decay_fraction": 0.0}})
            prev = self.add(Run(f"frontier-lr{fmt_num(lr)}-{pt}", "frontier", "frontier-stable",
                                fs, c, parent=prev, pending=pend)).name
        for T in p["frontier_budgets"]:
            start = int(round(T * (1 - df)))
            c = self.cfg(lr, fs, steps=T, extra={"train": {"decay_start": start}})
            self.add(Run(f"cool-lr{fmt_num(lr)}-{T}", "frontier", "frontier", fs, c,
                         parent=f"frontier-lr{fmt_num(lr)}-{start}", pending=pend))
        # screening at seed 1
        for m in p["methods"]:
            for tau, tp in self.method_taus(m):
                self.method_run(m, tau, 1, lr, "screen", pend or tp)
        # sanity rows: fixed small models at the baseline's FLOPs
        fb = flops_per_token(self.base["model"])
        for L in p.get("sanity_layers", []):
            mod = dict(self.base["model"], n_layer=L)
            steps = int(round(S * fb / flops_per_token(mod)))
            c = self.cfg(lr, 1, steps=steps, extra={"model": {"n_layer": L}})
            self.add(Run(f"sanity{L}-lr{fmt_num(lr)}-s1", "sanity", f"sanity-{L}", 1, c,
                         pending=pend))
        # confirmation: every confirm seed for the baseline and the best arms
        best, bpend = self.chosen("best", [a for a, _, _ in self.arms()[:p["confirm_arms"]]])
        arms = {a: (m, t) for a, m, t in self.arms()}
        for s in p["confirm_seeds"]:
            self.base_run(lr, s, "confirm", pend)
        for a in best:
            if a not in arms:
                continue
            m, t = arms[a]
            for s in p["confirm_seeds"]:
                self.method_run(m, t, s, lr, "confirm", pend or bpend)
        # the best arm's own annealed curve: its constant-LR run, cooldown branches from it
        if best and best[0] in arms and p.get("method_branches"):
            m, t = arms[best[0]]
            a = best[0]
            fr = sorted(p["method_branches"])
            # a V-cycle needs steps left for its way up: no segment ends inside its down and bottom
            vc = self.cfg(lr, 1, overlay=m["overlay"], tau=t).get("vcycle") or {}
            floor = (vc["down_steps"] * (vc["levels"] - 1) + vc["bottom_steps"] + 1
                     if vc.get("levels", 0) > 1 else 0)
            ends = [e for e in (int(round(f * S)) for f in fr) if int(round(e * (1 - df))) >= floor]
            starts = sorted({int(round(e * (1 - df))) for e in ends + [S]})
            prev = None
            for pt in starts:
                c = self.cfg(lr, 1, overlay=m["overlay"], tau=t,
                             extra={"train": {"steps": pt, "decay_fraction": 0.0}})
                prev = self.add(self.owned(Run(f"{a}-stable-{pt}", "branches", f"{a}-stable", 1, c,
                                               parent=prev, pending=pend or bpend, tau=t), m)).name
            for e in ends:
                st = int(round(e * (1 - df)))
                c = self.cfg(lr, 1, overlay=m["overlay"], tau=t,
                             extra={"train": {"steps": e, "decay_start": st}})
                self.add(self.owned(Run(f"{a}-cool-{e}", "branches", f"{a}-branch", 1, c,
                                        parent=f"{a}-stable-{st}", pending=pend or bpend, tau=t), m))


def config_hash(cfg, parent_hash, data_hashes):
    """sha256 of the resolved config (data files by their content, run.out left out) and the
    parent's hash: two runs with the same hash train the same thing."""
    c = copy.deepcopy(cfg)
    c.get("run", {}).pop("out", None)
    for k in ("train", "val"):
        if k in c.get("data", {}):
            c["data"][k] = data_hashes.get(c["data"][k], c["data"][k])
    text = json.dumps(c, sort_keys=True) + "\n" + (parent_hash or "")
    return hashlib.sha256(text.encode()).hexdigest()


def dump_config(cfg, path, header):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(header)
        yaml.safe_dump(cfg, f, sort_keys=False, default_flow_style=None)
    os.replace(tmp, path)


NAME_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")
