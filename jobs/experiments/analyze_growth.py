#!/usr/bin/env python3
"""Analysis of jobs/experiments/depth-growth.sh: reads RUNS/METHOD/metrics.jsonl of every method,
writes the Markdown report (setup, table, interpretation) and a gnuplot PNG of validation loss
against training FLOPs.

usage: analyze_growth.py --runs DIR --methods "baseline stack-2to8 ..." --md OUT.md --png OUT.png

The first method is the baseline. FLOPs are sprout's running total in metrics.jsonl (training
only, executed blocks only: 6 N_exec + 12 L d T per token, docs/growth.md); evaluation is not
counted. "FLOPs to reach" interpolates linearly in log10(FLOPs) between the two evaluations
around the first one at or below the target loss.
"""
import argparse
import glob
import json
import math
import os
import re
import subprocess
import sys
import tempfile

OP_NAME = {"stack": "G_stack", "direct": "G_direct", "interpolate": "Interpolation",
           "zero": "G_zero", "random": "G_random"}
# P1 (Du et al. 2024, "Stacking Your Transformers", Fig. 3): speedup at equal loss, 1.1B target
PAPER_SP = {"stack": 49.1, "zero": 46.6, "random": -25.7}


def load(run_dir):
    steps, events = [], []
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if r.get("event") == "growth":
                events.append(r)
            elif "event" not in r:
                steps.append(r)
    if not steps:
        sys.exit(f"analyze_growth: {run_dir}/metrics.jsonl has no step lines")
    evals = [(r["flops"], r["val_loss"], r["step"]) for r in steps if "val_loss" in r]
    wall = None
    p = os.path.join(run_dir, "wall_s")
    if os.path.exists(p):
        wall = float(open(p).read().strip())
    return {"steps": steps, "events": events, "evals": evals, "wall": wall}


def resolved_config(run_dir):
    """The resolved config the run stored in its newest checkpoint, as {section: {key: text}}."""
    files = sorted(glob.glob(os.path.join(run_dir, "ckpt", "step_*.h5")))
    if not files:
        return {}
    try:
        import h5py
        with h5py.File(files[-1], "r") as f:
            text = f["config"].attrs["yaml"]
    except Exception:  # the report does not need it; the table comes from metrics.jsonl
        return {}
    if isinstance(text, bytes):
        text = text.decode()
    cfg, sec = {}, None
    for line in text.splitlines():
        m = re.match(r"^(\w+):\s*$", line)
        if m:
            sec = cfg.setdefault(m.group(1), {})
            continue
        m = re.match(r"^  (\w+):\s*(.*)$", line)
        if m and sec is not None:
            sec[m.group(1)] = m.group(2).strip('"')
    return cfg


def flops_to_reach(evals, target):
    """FLOPs at which the validation loss first reaches target (log-FLOPs interpolation)."""
    for i, (f, v, _) in enumerate(evals):
        if v <= target:
            if i == 0:
                return f
            f0, v0, _ = evals[i - 1]
            t = (v0 - target) / (v0 - v)
            return 10 ** (math.log10(f0) + t * (math.log10(f) - math.log10(f0)))
    return None


def loss_at(evals, flops):
    """Validation loss at a FLOPs count (log-FLOPs interpolation), None outside the evals."""
    for i in range(1, len(evals)):
        f0, v0, _ = evals[i - 1]
        f1, v1, _ = evals[i]
        if f0 <= flops <= f1:
            t = (math.log10(flops) - math.log10(f0)) / (math.log10(f1) - math.log10(f0))
            return v0 + t * (v1 - v0)
    return None


def label(name, run):
    if not run["events"]:
        return "baseline (scratch)"
    e = run["events"][0]
    return f"{OP_NAME.get(e['op'], e['op'])} {e['n_layer_before']}→{e['n_layer_after']}"


def pct(x):
    return f"{100 * x:+.1f}%"


def sci(x):
    return f"{x:.3e}".replace("e+", "e")


def gnuplot_terminal():
    try:
        out = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = out.stdout + out.stderr
    if re.search(r"^\s*pngcairo\b", text, re.M):
        return "pngcairo size 1400,560 font 'Sans,11'"
    if re.search(r"^\s*png\b", text, re.M):
        return "png size 1400,560"
    return None


def plot(runs, names, target, png, workdir):
    term = gnuplot_terminal()
    if term is None:
        print("analyze_growth: gnuplot with a png terminal not found; no plot", file=sys.stderr)
        return False
    colors = ["#000000", "#d62728", "#ff7f0e", "#2ca02c", "#1f77b4", "#9467bd", "#8c564b"]
    files, evfiles = [], []
    for n in names:
        # the evaluations, with the held-out loss just before and after each growth event
        pts = [(fl, v) for fl, v, _ in runs[n]["evals"]]
        evs = [(e["flops"], e["loss_before"], e["loss_after"]) for e in runs[n]["events"]]
        for fl, b, a in evs:
            pts += [(fl * (1 - 1e-9), b), (fl, a)]
        pts.sort()
        p = os.path.join(workdir, f"{n}.dat")
        with open(p, "w") as f:
            f.writelines(f"{fl:.9e} {v:.6f}\n" for fl, v in pts)
        files.append(p)
        pe = None
        if evs:
            pe = os.path.join(workdir, f"{n}.events.dat")
            with open(pe, "w") as f:
                f.writelines(f"{fl:.9e} {b:.6f}\n{fl:.9e} {a:.6f}\n" for fl, b, a in evs)
        evfiles.append(pe)
    base = runs[names[0]]
    fmax = max(r["evals"][-1][0] for r in runs.values())
    fmin = min(r["evals"][0][0] for r in runs.values())
    vmax = max([v for r in runs.values() for _, v, _ in r["evals"]] +
               [max(e["loss_before"], e["loss_after"]) for r in runs.values() for e in r["events"]])
    fmin = min([fmin] + [e["flops"] for r in runs.values() for e in r["events"]])
    # zoom: the last 40% of the baseline's budget, losses near the target
    zx0 = 0.6 * base["evals"][-1][0]
    zlo = min(v for r in runs.values() for f, v, _ in r["evals"] if f >= zx0)
    zhi = max(v for r in runs.values() for f, v, _ in r["evals"] if f >= zx0)
    zhi = min(zhi, target + 0.15)
    pad = 0.1 * (zhi - zlo) + 0.005

    def curves():
        parts = []
        for k, (n, p) in enumerate(zip(names, files)):
            lw = 3 if k == 0 else 2
            parts.append(f"'{p}' using 1:2 with linespoints lw {lw} pt {k + 5} ps 0.7 "
                         f"lc rgb '{colors[k % len(colors)]}' title '{label(n, runs[n])}' "
                         f"noenhanced")
        for k, pe in enumerate(evfiles):
            if pe:
                parts.append(f"'{pe}' using 1:2 with points pt 6 ps 1.8 lw 1.5 "
                             f"lc rgb '{colors[k % len(colors)]}' notitle")
        parts.append("NaN with points pt 6 ps 1.8 lw 1.5 lc rgb '#000000' "
                     "title 'held-out loss just before/after growth' noenhanced")
        parts.append(f"{target} with lines dt 2 lw 1.5 lc rgb '#555555' "
                     f"title 'baseline final val loss ({target:.4f})' noenhanced")
        return ", \\\n  ".join(parts)

    def log_tics(lo, hi):
        t = []
        for k in range(int(math.floor(math.log10(lo))), int(math.ceil(math.log10(hi))) + 1):
            for m in (1, 2, 5):
                x = m * 10.0 ** k
                if lo <= x <= hi:
                    t.append(f"'{m}e{k}' {x:.3e}")
        return "(" + ", ".join(t) + ")"

    gp = f"""set terminal {term}
set output '{png}'
set multiplot layout 1,2 title 'Depth growth on the Brown corpus: validation loss vs. training FLOPs (same token budget)'
set grid
set logscale x
set xtics {log_tics(fmin / 1.2, fmax * 1.1)}
set mxtics 10
set xlabel 'training FLOPs (log scale)'
set ylabel 'validation loss (nats/byte)'
set xrange [{fmin / 1.2:.4e}:{fmax * 1.1:.4e}]
set yrange [*:{min(vmax, 3.6) + 0.05:.3f}]
set key bottom left opaque box
set title 'whole run'
plot {curves()}
unset logscale x
set xtics autofreq
set mxtics default
set format x '%.1te%T'
set xlabel 'training FLOPs (linear)'
set xrange [{zx0:.4e}:{fmax * 1.02:.4e}]
set yrange [{zlo - pad:.4f}:{zhi + pad:.4f}]
set title 'last 40% of the baseline budget (same colours)'
unset key
plot {curves()}
unset multiplot
"""
    gpf = os.path.join(workdir, "plot.gp")
    with open(gpf, "w") as f:
        f.write(gp)
    r = subprocess.run(["gnuplot", gpf], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"analyze_growth: gnuplot failed:\n{r.stderr}", file=sys.stderr)
        return False
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", required=True)
    ap.add_argument("--methods", required=True, help="space-separated; the first is the baseline")
    ap.add_argument("--md", required=True)
    ap.add_argument("--png", required=True)
    a = ap.parse_args()
    names = a.methods.split()
    runs = {n: load(os.path.join(a.runs, n)) for n in names}
    for n in names[1:]:
        if not runs[n]["events"]:
            sys.exit(f"analyze_growth: {n} has no growth event in its metrics")
    base = runs[names[0]]
    if base["events"]:
        sys.exit(f"analyze_growth: the baseline {names[0]} grew; it should not")
    if not base["evals"]:
        sys.exit("analyze_growth: the baseline has no validation loss")
    target = base["evals"][-1][1]
    f_base = flops_to_reach(base["evals"], target)
    f_base_total = base["steps"][-1]["flops"]
    tokens = {n: r["steps"][-1]["tokens"] for n, r in runs.items()}
    if len(set(tokens.values())) != 1:
        print(f"analyze_growth: warning: token budgets differ: {tokens}", file=sys.stderr)

    rows = []
    for n in names:
        r = runs[n]
        ev = r["events"][0] if r["events"] else None
        f_total = r["steps"][-1]["flops"]
        f_reach = flops_to_reach(r["evals"], target)
        rows.append({
            "name": n, "label": label(n, r), "op": ev["op"] if ev else None,
            "n0": r["steps"][0]["n_layer"], "n1": r["steps"][-1]["n_layer"],
            "gstep": ev["step"] if ev else None, "gtokens": ev["tokens"] if ev else None,
            "before": ev["loss_before"] if ev else None, "after": ev["loss_after"] if ev else None,
            "final": r["evals"][-1][1], "f_total": f_total, "f_reach": f_reach,
            "s": 1 - f_reach / f_base if f_reach else None,
            "sp": f_base / f_reach - 1 if f_reach else None,
            "wall": r["wall"], "steps": r["steps"][-1]["step"], "tokens": r["steps"][-1]["tokens"],
            "at_base_flops": r["evals"][-1][1],
        })

    cfg = resolved_config(os.path.join(a.runs, names[0]))
    g = lambda s, k, d="?": cfg.get(s, {}).get(k, d)
    steps = base["steps"][-1]["step"]
    tok = base["steps"][-1]["tokens"]
    tok_per_step = tok // steps
    commit = "unknown"
    cp = os.path.join(a.runs, "commit")
    if os.path.exists(cp):
        commit = open(cp).read().strip()
    eval_steps = [s for _, _, s in base["evals"]]
    eval_every = eval_steps[1] - eval_steps[0] if len(eval_steps) > 1 else steps
    grow_cfg = {}
    # the growth list is a YAML sequence; pick the keys of its first item
    try:
        import h5py  # noqa: F401
        f = sorted(glob.glob(os.path.join(a.runs, names[1], "ckpt", "step_*.h5")))[-1]
        with h5py.File(f, "r") as h:
            text = h["config"].attrs["yaml"]
        text = text.decode() if isinstance(text, bytes) else text
        gtext = text.split("\ngrowth:", 1)[1]
        for k in ("optimizer", "lr", "rewarm_steps", "at_tokens", "ramp_steps"):
            m = re.search(rf"\b{k}: \"?([^\"\n]+)\"?", gtext)
            if m:
                grow_cfg[k] = m.group(1)
    except Exception:
        pass
    train_tokens = None
    try:
        m = re.search(r"^data: \S+ \((\d+) tokens\)",
                      open(os.path.join(a.runs, names[0], "train.log")).read(), re.M)
        train_tokens = int(m.group(1)) if m else None
    except OSError:
        pass
    warm = int(g("train", "warmup_steps", "0") or 0)
    try:  # parameters of the final model: blocks, embeddings (tied head), final LayerNorm
        d, nl, v, t = (int(g("model", k)) for k in ("d_model", "n_layer", "vocab", "seq_len"))
        ff = int(g("model", "d_ff", "0")) or 4 * d
        n_params = nl * (4 * d * d + 2 * d * ff + 9 * d + ff) + v * d + t * d + 2 * d
    except ValueError:
        n_params = None
    gstep = rows[1]["gstep"] if len(rows) > 1 else 0
    left = steps - (gstep or 0)
    rewarm = int(grow_cfg.get("rewarm_steps", "0") or 0)
    rewarm_eff = rewarm if rewarm > 0 else max(1, min(warm, max(left // 20, 1)))

    # ---- the report ----
    L = []
    w = L.append
    w("# Depth growth on the Brown corpus")
    w("")
    w("Generated by `jobs/experiments/depth-growth.sh` (analysis: "
      "`jobs/experiments/analyze_growth.py`); re-running the script regenerates this page and "
      "the plot. Do not edit by hand.")
    w("")
    w("## Setup")
    w("")
    w(f"- **Model at the end of every run:** GPT-2, {g('model', 'n_layer')} blocks, d_model "
      f"{g('model', 'd_model')}, {g('model', 'n_head')} heads, d_ff 4·d_model, byte vocabulary "
      f"({g('model', 'vocab')}), context {g('model', 'seq_len')}.")
    w(f"- **Budget, identical for every method:** {steps} steps of {g('train', 'global_batch')} "
      f"sequences × {g('model', 'seq_len')} tokens = {tok_per_step} tokens per step, "
      f"{tok:,} tokens in all"
      + (f" (the training text is {train_tokens:,} bytes, so about {tok / train_tokens:.2f} "
         f"passes)" if train_tokens else "") + ". Every run reads the same sequence of training samples "
      f"(seed {g('train', 'seed')}).")
    w(f"- **Optimisation:** AdamW, peak LR {g('train', 'lr')}, warm-up {warm} steps, cosine to "
      f"{g('train', 'min_lr')} at step {steps}, weight decay {g('train', 'weight_decay')}, "
      f"clip {g('train', 'grad_clip')}; micro-batch {g('train', 'micro_batch')}; 2 MPI ranks "
      f"(data-parallel, 1 OpenBLAS thread each) on a 2-core machine.")
    w(f"- **Growth:** one event per growth run, `at_tokens: {grow_cfg.get('at_tokens', '?')}`. "
      f"This budget is far below the 1e20 FLOPs that the growth-timing fit covers, so sprout "
      f"falls back to 10% of the tokens: the event comes before step {gstep}. A pilot gave no "
      f"reason to choose another time, so the default is kept. The start depth is 8 / factor.")
    w(f"- **Optimizer and LR at the event, the same for every growth method:** "
      f"`optimizer: {grow_cfg.get('optimizer', '?')}` (AdamW moments and step counts set to 0) "
      f"and `lr: {grow_cfg.get('lr', '?')}` (the LR ramps linearly from 0 back to the global "
      f"cosine schedule's value over {rewarm_eff} steps, the default: the run's warm-up capped "
      f"at 5% of the steps left; the cosine schedule itself is not restarted). This is the "
      f"reference mode of G_stack (a fresh optimizer and a re-warm-up after the event). It is "
      f"used for the other operators as well, so that the operators differ only in how they "
      f"build the new blocks. `random` fades its fresh blocks in over "
      f"{grow_cfg.get('ramp_steps', '?')} steps (branch scale 0 → 1).")
    w(f"- **Validation loss:** every {eval_every} steps and at the end, on the first "
      f"{g('eval', 'batches')} × {g('train', 'micro_batch')} windows of "
      f"{g('model', 'seq_len')} bytes of `val.bin`. That is "
      f"{int(g('eval', 'batches', 0)) * int(g('train', 'micro_batch', 0)) * int(g('model', 'seq_len', 0)):,} "
      f"bytes, always the same ones, which come from the first documents of the validation "
      f"split.")
    w("- **FLOPs:** sprout's training count, 6·N_exec + 12·L·d·T per token, with only executed "
      "blocks counted. Evaluation is not counted. A growth run is cheaper per step before its "
      "event, so at the same token budget it uses fewer FLOPs than the baseline.")
    w("- **FLOPs to reach the baseline's final loss:** the first evaluation at or below the "
      "baseline's final validation loss, interpolated linearly in log10(FLOPs) with the "
      "evaluation before it. Saving s = 1 − F_method / F_base, speedup sp = F_base / F_method − 1 "
      "(s = sp / (1 + sp)). If the loss never reaches the target, the run gets \"not reached\".")
    w(f"- sprout commit {commit}; wall time is the whole `train.sh` run, including start-up, "
      f"evaluation and the final checkpoint.")
    w("")
    w("## Results")
    w("")
    w(f"Target: the baseline's final validation loss, **{target:.4f}** nats/byte, reached "
      f"after {sci(f_base)} FLOPs.")
    w("")
    w("| method | start → end depth | growth before step (tokens) | final val loss | Δ vs baseline "
      "| total FLOPs (vs baseline) | FLOPs to reach baseline's final loss | saving s | speedup sp "
      "| held-out loss before → after growth | wall s |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        grow = f"{r['gstep']} ({r['gtokens']:,})" if r["gstep"] is not None else "—"
        ba = f"{r['before']:.4f} → {r['after']:.4f} ({r['after'] - r['before']:+.4f})" \
            if r["before"] is not None else "—"
        reach = sci(r["f_reach"]) if r["f_reach"] else "not reached"
        s = pct(r["s"]) if r["s"] is not None else "—"
        sp = pct(r["sp"]) if r["sp"] is not None else "—"
        wall = f"{r['wall']:.0f}" if r["wall"] else "?"
        w(f"| {r['label']} | {r['n0']} → {r['n1']} | {grow} | {r['final']:.4f} | "
          f"{r['final'] - target:+.4f} | {sci(r['f_total'])} ({r['f_total'] / f_base_total:.3f}) | "
          f"{reach} | {s} | {sp} | {ba} | {wall} |")
    w("")
    w("Validation loss at each evaluation (nats/byte):")
    w("")
    w("| step | " + " | ".join(r["label"] for r in rows) + " |")
    w("|---|" + "---|" * len(rows))
    all_steps = sorted({s for n in names for _, _, s in runs[n]["evals"]})
    by = {n: {s: v for _, v, s in runs[n]["evals"]} for n in names}
    for s in all_steps:
        w(f"| {s} | " + " | ".join(f"{by[n][s]:.4f}" if s in by[n] else "" for n in names) + " |")
    w("")
    fracs = (0.1, 0.25, 0.5, 0.75, 0.9)
    iso = {n: {fr: loss_at(runs[n]["evals"], fr * f_base_total) for fr in fracs} for n in names}
    w("Validation loss at equal training FLOPs, as a fraction of the baseline's budget "
      "(interpolated in log10(FLOPs) between evaluations; in brackets the difference to the "
      "baseline, negative = lower loss than the baseline). Before the end, runs at equal FLOPs "
      "are at different points of their step-based LR schedules:")
    w("")
    w("| method | " + " | ".join(f"{100 * fr:.0f}% ({sci(fr * f_base_total)})" for fr in fracs)
      + " |")
    w("|---|" + "---|" * len(fracs))
    for n in names:
        cells = []
        for fr in fracs:
            v, bv = iso[n][fr], iso[names[0]][fr]
            if v is None:
                cells.append("—")
            elif n == names[0] or bv is None:
                cells.append(f"{v:.4f}")
            else:
                cells.append(f"{v:.4f} ({v - bv:+.4f})")
        w(f"| {label(n, runs[n])} | " + " | ".join(cells) + " |")
    w("")
    w(f"![validation loss vs. training FLOPs]({os.path.basename(a.png)})")
    w("")

    # ---- interpretation, phrased from the numbers ----
    w("## Interpretation")
    w("")
    grown = rows[1:]
    reached = sorted([r for r in grown if r["f_reach"]], key=lambda r: r["f_reach"])
    missed = [r for r in grown if not r["f_reach"]]
    P = []
    if reached:
        b = reached[0]
        if b["s"] > 0:
            P.append(f"{b['label']} does best: it reaches the baseline's final validation loss "
                     f"({target:.4f}) with {100 * b['s']:.1f}% fewer FLOPs (speedup "
                     f"{100 * b['sp']:.1f}% in the P1 convention), and ends {abs(b['final'] - target):.4f} nats "
                     f"{'below' if b['final'] < target else 'above'} the baseline.")
        else:
            P.append(f"No growth method saves FLOPs here. The earliest to reach the baseline's final "
                     f"loss, {b['label']}, needs {100 * -b['s']:.1f}% more FLOPs than the baseline.")
        for r in reached[1:]:
            verb = "fewer" if r["s"] > 0 else "more"
            P.append(f"{r['label']} reaches it with {100 * abs(r['s']):.1f}% {verb} FLOPs "
                     f"(final loss {r['final']:.4f}, {r['final'] - target:+.4f}).")
    for r in missed:
        P.append(f"{r['label']} does not reach it within the budget: it ends at {r['final']:.4f}, "
                 f"{r['final'] - target:+.4f} nats from the baseline, after "
                 f"{100 * r['f_total'] / f_base_total:.1f}% of the baseline's FLOPs.")
    w(" ".join(P))
    w("")

    P = []
    disc = {}
    for r in grown:
        disc.setdefault(r["n0"], 1 - r["f_total"] / f_base_total)
    P.append(f"Part of any saving is the cheap base phase. With the event at "
             f"{100 * gstep / steps:.0f}% of the tokens, a run that starts at "
             + " and one that starts at ".join(f"{n0} blocks uses {100 * d:.1f}%"
                                               for n0, d in sorted(disc.items()))
             + " fewer FLOPs than the baseline over the same tokens. A growth run that matched the "
               "baseline token for token would save exactly that. A larger saving means it learned "
               "more per token after the event; a smaller one (or none) means it learned less.")
    for r in grown:
        d = disc[r["n0"]]
        if r["s"] is None:
            P.append(f"{r['label']} does not make up for its discount.")
        elif r["s"] > d:
            P.append(f"{r['label']} saves {100 * r['s']:.1f}%, more than its discount of "
                     f"{100 * d:.1f}%.")
        else:
            P.append(f"{r['label']} saves {100 * r['s']:.1f}%, less than its discount of "
                     f"{100 * d:.1f}%.")
    st = {r["name"]: r for r in grown}
    s2, s4 = st.get("stack-2to8"), st.get("stack-4to8")
    if s2 and s4:
        better = s2 if s2["final"] < s4["final"] else s4
        other = s4 if better is s2 else s2
        P.append(f"Of the two stacking runs, {better['label']} ends lower ({better['final']:.4f} "
                 f"against {other['final']:.4f}). Its base phase costs "
                 f"{'less' if better['f_total'] < other['f_total'] else 'more'}: total FLOPs "
                 f"{better['f_total'] / f_base_total:.3f} against {other['f_total'] / f_base_total:.3f} "
                 f"of the baseline.")
    w(" ".join(P))
    w("")

    P = []
    for r in grown:
        if r["before"] is None:
            continue
        d = r["after"] - r["before"]
        if abs(d) <= 1e-5 * abs(r["before"]):
            P.append(f"{r['label']} preserves the function: the held-out loss is {r['before']:.4f} "
                     f"before and after the event.")
        else:
            P.append(f"{r['label']} changes the function: the held-out loss goes from "
                     f"{r['before']:.4f} to {r['after']:.4f} ({d:+.4f}) at the event.")
    first_after = {}
    for r in grown:
        ev = [(s, v) for _, v, s in runs[r["name"]]["evals"] if s > r["gstep"]]
        if ev:
            first_after[r["name"]] = ev[0]
    if first_after:
        s0 = min(s for s, _ in first_after.values())
        P.append("At the first evaluation after the event, the losses are " + ", ".join(
            f"{rr['label']} {first_after[rr['name']][1]:.4f} (step {first_after[rr['name']][0]})"
            for rr in grown if rr["name"] in first_after) +
            (f", and the baseline's is {by[names[0]][s0]:.4f}." if s0 in by[names[0]] else "."))
    w(" ".join(P))
    w("")

    P = []
    rnd = st.get("random-2to8")
    stk = st.get("stack-2to8")
    if rnd and stk:
        rel = "behind" if rnd["final"] > stk["final"] else "ahead of"
        P.append(f"P1 found G_random slower than training from scratch "
                 f"({PAPER_SP['random']:+.1f}% speedup at 1.1B) and G_stack the best operator "
                 f"({PAPER_SP['stack']:+.1f}%). Here G_random ends {rel} G_stack "
                 f"({rnd['final']:.4f} against {stk['final']:.4f}) and "
                 + ("does not reach the baseline's loss."
                    if not rnd["f_reach"] else f"has a saving of {pct(rnd['s'])}.")
                 + (f" P1 measured at 1.1B parameters and 100B tokens; this model has "
                    f"{n_params / 1e6:.2f}M parameters ({1.1e9 / n_params:,.0f}× fewer) and the "
                    f"run sees {tok / 1e6:.1f}M tokens ({100e9 / tok:,.0f}× fewer)."
                    if n_params else ""))
    # sensitivity: how much budget a small loss difference is worth at the end of the run
    ev = base["evals"]
    if len(ev) >= 3:
        (fa, va, _), (fb, vb, _) = ev[-3], ev[-1]
        slope = (va - vb) / (fb - fa)  # nats per FLOP near the end
        if slope > 0:
            shift = 0.01 / slope / f_base
            P.append(f"These numbers are sensitive. Over its last {2 * eval_every} steps the "
                     f"baseline improves by {va - vb:.4f} nats, so a 0.01-nat difference in "
                     f"loss moves the FLOPs needed to reach the target by about {100 * shift:.0f}% "
                     f"of the budget.")
    # the largest lead over the baseline at an equal step (= equal tokens), against the final one
    leads = []
    for r in grown:
        d = [(by[names[0]][s] - v, s) for _, v, s in runs[r["name"]]["evals"]
             if s in by[names[0]] and s > r["gstep"]]
        if d:
            leads.append((max(d), r))
    if leads:
        (lead, at), r = max(leads, key=lambda x: x[0][0])
        fin = target - r["final"]
        if lead > 0:
            P.append(f"All runs share one cosine schedule that ends at the same step, and the "
                     f"gaps change as the LR anneals. The largest lead of any growth run over the "
                     f"baseline at an equal step is {lead:.4f} nats ({r['label']} at step {at}); "
                     f"at the end its lead is {fin:+.4f}.")
        else:
            P.append("No growth run is ahead of the baseline at any evaluation after its event, "
                     "at an equal step.")
    # at equal FLOPs (the table above the interpretation has the numbers)
    for fr in (0.5, 0.9):
        d = [(iso[r["name"]][fr], r) for r in grown if iso[r["name"]][fr] is not None]
        if d and iso[names[0]][fr] is not None:
            (v, r) = min(d, key=lambda x: x[0])
            bv = iso[names[0]][fr]
            ahead = sum(1 for vv, _ in d if vv < bv)
            P.append(f"At equal FLOPs, {100 * fr:.0f}% of the baseline's budget, {ahead} of the "
                     f"{len(d)} growth runs are below the baseline's curve; the lowest, "
                     f"{r['label']}, is {v - bv:+.4f} nats from it.")
    # equal FLOPs is not the same point of the (step-based) LR schedule
    def step_at(run, fl):
        st = run["steps"]
        for i in range(1, len(st)):
            if st[i - 1]["flops"] <= fl <= st[i]["flops"]:
                t = (fl - st[i - 1]["flops"]) / (st[i]["flops"] - st[i - 1]["flops"])
                return st[i - 1]["step"] + t * (st[i]["step"] - st[i - 1]["step"])
        return None
    two = [r for r in grown if r["n0"] == min(rr["n0"] for rr in grown)]
    if two:
        sb = step_at(base, 0.9 * f_base_total)
        sg = step_at(runs[two[0]["name"]], 0.9 * f_base_total)
        if sb is not None and sg is not None:
            P.append(f"This comparison flatters the growth runs late in training. The LR schedule "
                     f"runs by steps, and at 90% of the baseline's FLOPs the baseline is at step "
                     f"{sb:.0f} of {steps} while a run that started at {two[0]['n0']} blocks is at "
                     f"step {sg:.0f}, further into the LR decay. The final losses and the FLOPs "
                     f"to reach the target, which compare complete schedules, are the fair "
                     f"measure.")
    P.append("Each method was run once, with one seed, and the loss is measured on a small, fixed "
             "slice of the validation text. Seed-to-seed variation was not measured, so small "
             "differences between methods should not be read as a ranking.")
    w(" ".join(P))
    w("")

    walls = {r["name"]: r["wall"] for r in rows if r["wall"]}
    if names[0] in walls and len(walls) > 1:
        w("Wall time on this machine: " + ", ".join(
            f"{r['label']} {r['wall']:.0f} s" for r in rows if r["wall"]) +
            f". The total for the {len(walls)} runs was {sum(walls.values()) / 60:.1f} min. Wall "
            "time also includes evaluation, start-up, the growth event itself and whatever else "
            "the machine was running, so it is not a clean cost measure. The FLOPs columns are.")
        w("")

    with open(a.md, "w") as f:
        f.write("\n".join(L))
    with tempfile.TemporaryDirectory() as td:
        ok = plot(runs, names, target, os.path.abspath(a.png), td)
    # the table on stdout too, for the log
    for r in rows:
        print(f"  {r['label']:<22} final {r['final']:.4f}  flops {sci(r['f_total'])}  reach "
              f"{sci(r['f_reach']) if r['f_reach'] else 'not reached':>10}  "
              f"s {pct(r['s']) if r['s'] is not None else '-':>7}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
