"""Shared part of the experiment reports in jobs/experiments/ (analyze_growth.py for depth growth,
analyze_vcycle.py for V-cycles): reading RUNS/METHOD/metrics.jsonl, the FLOPs-to-reach and
equal-FLOPs measures, the Markdown parts every report has (setup, validation-loss tables, the
caveats of the interpretation, wall time) and the gnuplot PNG of validation loss against
training FLOPs with the growth events marked.

The first method is the baseline, trained at full size without events; its final validation
loss is the target. FLOPs are sprout's running total in metrics.jsonl (training only, executed
blocks only: 6 N_exec + 12 L d T per token, docs/growth.md); evaluation is not counted. "FLOPs to
reach" interpolates linearly in log10(FLOPs) between the two evaluations around the first one at
or below the target loss.
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

FRACS = (0.1, 0.25, 0.5, 0.75, 0.9)


def load(run_dir, tool):
    steps, events = [], []
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if r.get("event") == "growth":
                events.append(r)
            elif "event" not in r:
                steps.append(r)
    if not steps:
        sys.exit(f"{tool}: {run_dir}/metrics.jsonl has no step lines")
    evals = [(r["flops"], r["val_loss"], r["step"]) for r in steps if "val_loss" in r]
    wall = None
    p = os.path.join(run_dir, "wall_s")
    if os.path.exists(p):
        wall = float(open(p).read().strip())
    return {"steps": steps, "events": events, "evals": evals, "wall": wall}


def config_text(run_dir):
    """The resolved config YAML the run stored in its newest checkpoint, or None."""
    files = sorted(glob.glob(os.path.join(run_dir, "ckpt", "step_*.h5")))
    if not files:
        return None
    try:
        import h5py
        with h5py.File(files[-1], "r") as f:
            text = f["config"].attrs["yaml"]
    except Exception:  # the report does not need it; the table comes from metrics.jsonl
        return None
    return text.decode() if isinstance(text, bytes) else text


def resolved_config(run_dir):
    """The resolved config of the run, as {section: {key: text}} (block-style sections)."""
    text = config_text(run_dir)
    if text is None:
        return {}
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


def step_at(run, fl):
    """The (fractional) step at which a run's running FLOPs total reaches fl, or None."""
    st = run["steps"]
    for i in range(1, len(st)):
        if st[i - 1]["flops"] <= fl <= st[i]["flops"]:
            t = (fl - st[i - 1]["flops"]) / (st[i]["flops"] - st[i - 1]["flops"])
            return st[i - 1]["step"] + t * (st[i]["step"] - st[i - 1]["step"])
    return None


def pct(x):
    return f"{100 * x:+.1f}%"


def sci(x):
    return f"{x:.3e}".replace("e+", "e")


def parse_args(doc):
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--runs", required=True)
    ap.add_argument("--methods", required=True, help="space-separated; the first is the baseline")
    ap.add_argument("--md", required=True)
    ap.add_argument("--png", required=True)
    return ap.parse_args()


class Experiment:
    """The runs of one experiment and the numbers every report uses."""

    def __init__(self, args, label, tool):
        self.args, self.label, self.tool = args, label, tool
        self.names = names = args.methods.split()
        self.runs = runs = {n: load(os.path.join(args.runs, n), tool) for n in names}
        self.base = base = runs[names[0]]
        if base["events"]:
            sys.exit(f"{tool}: the baseline {names[0]} grew; it should not")
        if not base["evals"]:
            sys.exit(f"{tool}: the baseline has no validation loss")
        self.target = base["evals"][-1][1]
        self.f_base = flops_to_reach(base["evals"], self.target)
        self.f_base_total = base["steps"][-1]["flops"]
        tokens = {n: r["steps"][-1]["tokens"] for n, r in runs.items()}
        if len(set(tokens.values())) != 1:
            print(f"{tool}: warning: token budgets differ: {tokens}", file=sys.stderr)
        self.cfg = resolved_config(os.path.join(args.runs, names[0]))
        self.steps = base["steps"][-1]["step"]
        self.tok = base["steps"][-1]["tokens"]
        self.tok_per_step = self.tok // self.steps
        self.commit = "unknown"
        cp = os.path.join(args.runs, "commit")
        if os.path.exists(cp):
            self.commit = open(cp).read().strip()
        eval_steps = [s for _, _, s in base["evals"]]
        self.eval_every = eval_steps[1] - eval_steps[0] if len(eval_steps) > 1 else self.steps
        self.train_tokens = None
        try:
            m = re.search(r"^data: \S+ \((\d+) tokens\)",
                          open(os.path.join(args.runs, names[0], "train.log")).read(), re.M)
            self.train_tokens = int(m.group(1)) if m else None
        except OSError:
            pass
        self.warm = int(self.g("train", "warmup_steps", "0") or 0)
        try:  # parameters of the final model: blocks, embeddings (tied head), final LayerNorm
            d, nl, v, t = (int(self.g("model", k)) for k in ("d_model", "n_layer", "vocab", "seq_len"))
            ff = int(self.g("model", "d_ff", "0")) or 4 * d
            self.n_params = nl * (4 * d * d + 2 * d * ff + 9 * d + ff) + v * d + t * d + 2 * d
        except ValueError:
            self.n_params = None
        self.by = {n: {s: v for _, v, s in runs[n]["evals"]} for n in names}
        self.iso = {n: {fr: loss_at(runs[n]["evals"], fr * self.f_base_total) for fr in FRACS}
                    for n in names}
        self.lines = []

    def g(self, section, key, default="?"):
        return self.cfg.get(section, {}).get(key, default)

    def row(self, n):
        """The columns every report has, for method n."""
        r = self.runs[n]
        f_reach = flops_to_reach(r["evals"], self.target)
        return {
            "name": n, "label": self.label(n, r),
            "final": r["evals"][-1][1], "f_total": r["steps"][-1]["flops"], "f_reach": f_reach,
            "s": 1 - f_reach / self.f_base if f_reach else None,
            "sp": self.f_base / f_reach - 1 if f_reach else None,
            "wall": r["wall"], "steps": r["steps"][-1]["step"], "tokens": r["steps"][-1]["tokens"],
        }

    def w(self, line):
        self.lines.append(line)

    # ---- setup ----
    def setup_model_budget_optim(self):
        g, w, steps, tok = self.g, self.w, self.steps, self.tok
        w(f"- **Model at the end of every run:** GPT-2, {g('model', 'n_layer')} blocks, d_model "
          f"{g('model', 'd_model')}, {g('model', 'n_head')} heads, d_ff 4·d_model, byte vocabulary "
          f"({g('model', 'vocab')}), context {g('model', 'seq_len')}.")
        w(f"- **Budget, identical for every method:** {steps} steps of {g('train', 'global_batch')} "
          f"sequences × {g('model', 'seq_len')} tokens = {self.tok_per_step} tokens per step, "
          f"{tok:,} tokens in all"
          + (f" (the training text is {self.train_tokens:,} bytes, so about "
             f"{tok / self.train_tokens:.2f} passes)" if self.train_tokens else "")
          + ". Every run reads the same sequence of training samples "
          f"(seed {g('train', 'seed')}).")
        w(f"- **Optimisation:** AdamW, peak LR {g('train', 'lr')}, warm-up {self.warm} steps, cosine to "
          f"{g('train', 'min_lr')} at step {steps}, weight decay {g('train', 'weight_decay')}, "
          f"clip {g('train', 'grad_clip')}; micro-batch {g('train', 'micro_batch')}; 2 MPI ranks "
          f"(data-parallel, 1 OpenBLAS thread each) on a 2-core machine.")

    def setup_eval_flops(self, flops_note):
        g, w = self.g, self.w
        # eval.windows; configs older than it give eval.batches x micro_batch windows
        nb = int(g('eval', 'batches', 0))
        win = nb * int(g('train', 'micro_batch', 0)) if nb > 0 else int(g('eval', 'windows', 0))
        w(f"- **Validation loss:** every {self.eval_every} steps and at the end, on the first "
          f"{win} windows of {g('model', 'seq_len')} bytes of `val.bin`. That is "
          f"{win * int(g('model', 'seq_len', 0)):,} "
          f"bytes, always the same ones, which come from the first documents of the validation "
          f"split.")
        w("- **FLOPs:** sprout's training count, 6·N_exec + 12·L·d·T per token, with only executed "
          "blocks counted. Evaluation is not counted. " + flops_note)
        w("- **FLOPs to reach the baseline's final loss:** the first evaluation at or below the "
          "baseline's final validation loss, interpolated linearly in log10(FLOPs) with the "
          "evaluation before it. Saving s = 1 − F_method / F_base, speedup sp = F_base / F_method − 1 "
          "(s = sp / (1 + sp)). If the loss never reaches the target, the run gets \"not reached\".")
        w(f"- sprout commit {self.commit}; wall time is the whole `train.sh` run, including start-up, "
          f"evaluation and the final checkpoint.")
        w("")

    # ---- results ----
    def target_line(self):
        self.w(f"Target: the baseline's final validation loss, **{self.target:.4f}** nats/byte, "
               f"reached after {sci(self.f_base)} FLOPs.")
        self.w("")

    def common_cells(self, r):
        """final loss, Δ, total FLOPs, FLOPs to reach, s, sp: the middle of every results table."""
        reach = sci(r["f_reach"]) if r["f_reach"] else "not reached"
        s = pct(r["s"]) if r["s"] is not None else "—"
        sp = pct(r["sp"]) if r["sp"] is not None else "—"
        return [f"{r['final']:.4f}", f"{r['final'] - self.target:+.4f}",
                f"{sci(r['f_total'])} ({r['f_total'] / self.f_base_total:.3f})", reach, s, sp]

    @staticmethod
    def wall_cell(r):
        return f"{r['wall']:.0f}" if r["wall"] else "?"

    def loss_tables(self):
        w, names, runs, by = self.w, self.names, self.runs, self.by
        w("Validation loss at each evaluation (nats/byte):")
        w("")
        w("| step | " + " | ".join(self.label(n, runs[n]) for n in names) + " |")
        w("|---|" + "---|" * len(names))
        all_steps = sorted({s for n in names for _, _, s in runs[n]["evals"]})
        for s in all_steps:
            w(f"| {s} | " + " | ".join(f"{by[n][s]:.4f}" if s in by[n] else "" for n in names) + " |")
        w("")
        w("Validation loss at equal training FLOPs, as a fraction of the baseline's budget "
          "(interpolated in log10(FLOPs) between evaluations; in brackets the difference to the "
          "baseline, negative = lower loss than the baseline). Before the end, runs at equal FLOPs "
          "are at different points of their step-based LR schedules:")
        w("")
        w("| method | " + " | ".join(f"{100 * fr:.0f}% ({sci(fr * self.f_base_total)})" for fr in FRACS)
          + " |")
        w("|---|" + "---|" * len(FRACS))
        iso = self.iso
        for n in names:
            cells = []
            for fr in FRACS:
                v, bv = iso[n][fr], iso[names[0]][fr]
                if v is None:
                    cells.append("—")
                elif n == names[0] or bv is None:
                    cells.append(f"{v:.4f}")
                else:
                    cells.append(f"{v:.4f} ({v - bv:+.4f})")
            w(f"| {self.label(n, runs[n])} | " + " | ".join(cells) + " |")
        w("")
        w(f"![validation loss vs. training FLOPs]({os.path.basename(self.args.png)})")
        w("")

    # ---- interpretation ----
    def reach_sentences(self, rows, kind):
        """Who reaches the target with how many FLOPs; kind names the non-baseline methods."""
        target, P = self.target, []
        reached = sorted([r for r in rows if r["f_reach"]], key=lambda r: r["f_reach"])
        missed = [r for r in rows if not r["f_reach"]]
        if reached:
            b = reached[0]
            if b["s"] > 0:
                P.append(f"{b['label']} does best: it reaches the baseline's final validation loss "
                         f"({target:.4f}) with {100 * b['s']:.1f}% fewer FLOPs (speedup "
                         f"{100 * b['sp']:.1f}% in the G_stack paper's convention), and ends {abs(b['final'] - target):.4f} nats "
                         f"{'below' if b['final'] < target else 'above'} the baseline.")
            else:
                P.append(f"No {kind} saves FLOPs here. The earliest to reach the baseline's final "
                         f"loss, {b['label']}, needs {100 * -b['s']:.1f}% more FLOPs than the baseline.")
            for r in reached[1:]:
                verb = "fewer" if r["s"] > 0 else "more"
                P.append(f"{r['label']} reaches it with {100 * abs(r['s']):.1f}% {verb} FLOPs "
                         f"(final loss {r['final']:.4f}, {r['final'] - target:+.4f}).")
        for r in missed:
            it = "it" if P else f"the baseline's final validation loss ({target:.4f})"
            P.append(f"{r['label']} does not reach {it} within the budget: it ends at {r['final']:.4f}, "
                     f"{r['final'] - target:+.4f} nats from the baseline, after "
                     f"{100 * r['f_total'] / self.f_base_total:.1f}% of the baseline's FLOPs.")
        return P

    def sensitivity_sentence(self):
        ev = self.base["evals"]
        if len(ev) >= 3:
            (fa, va, _), (fb, vb, _) = ev[-3], ev[-1]
            slope = (va - vb) / (fb - fa)  # nats per FLOP near the end
            if slope > 0:
                shift = 0.01 / slope / self.f_base
                return [f"These numbers are sensitive. Over its last {2 * self.eval_every} steps the "
                        f"baseline improves by {va - vb:.4f} nats, so a 0.01-nat difference in "
                        f"loss moves the FLOPs needed to reach the target by about {100 * shift:.0f}% "
                        f"of the budget."]
        return []

    def lead_sentence(self, rows, after_step, kind, after="its event"):
        """The largest lead of a method over the baseline at an equal step after after_step[name]
        (the step of what `after` names)."""
        b = self.by[self.names[0]]
        leads = []
        for r in rows:
            d = [(b[s] - v, s) for _, v, s in self.runs[r["name"]]["evals"]
                 if s in b and s > after_step[r["name"]]]
            if d:
                leads.append((max(d), r))
        if not leads:
            return []
        (lead, at), r = max(leads, key=lambda x: x[0][0])
        fin = self.target - r["final"]
        if lead > 0:
            return [f"All runs share one cosine schedule that ends at the same step, and the "
                    f"gaps change as the LR anneals. The largest lead of any {kind} over the "
                    f"baseline at an equal step is {lead:.4f} nats ({r['label']} at step {at}); "
                    f"at the end its lead is {fin:+.4f}."]
        return [f"No {kind} is ahead of the baseline at any evaluation after {after}, "
                "at an equal step."]

    def equal_flops_sentences(self, rows, kind):
        P, iso, b = [], self.iso, self.names[0]
        for fr in (0.5, 0.9):
            d = [(iso[r["name"]][fr], r) for r in rows if iso[r["name"]][fr] is not None]
            if d and iso[b][fr] is not None:
                (v, r) = min(d, key=lambda x: x[0])
                bv = iso[b][fr]
                ahead = sum(1 for vv, _ in d if vv < bv)
                if len(d) == 1:
                    P.append(f"At equal FLOPs, {100 * fr:.0f}% of the baseline's budget, only "
                             f"{r['label']} has got that far; it is {v - bv:+.4f} nats from the "
                             f"baseline's curve.")
                    continue
                P.append(f"At equal FLOPs, {100 * fr:.0f}% of the baseline's budget, {ahead} of the "
                         f"{len(d)} {kind}s are below the baseline's curve; the lowest, "
                         f"{r['label']}, is {v - bv:+.4f} nats from it.")
        return P

    def schedule_sentence(self, name, who, kind):
        """Equal FLOPs late in training is not the same point of the (step-based) LR schedule."""
        sb = step_at(self.base, 0.9 * self.f_base_total)
        sg = step_at(self.runs[name], 0.9 * self.f_base_total)
        if sb is None or sg is None:
            return []
        return [f"This comparison flatters the {kind}s late in training. The LR schedule "
                f"runs by steps, and at 90% of the baseline's FLOPs the baseline is at step "
                f"{sb:.0f} of {self.steps} while {who} is at "
                f"step {sg:.0f}, further into the LR decay. The final losses and the FLOPs "
                f"to reach the target, which compare complete schedules, are the fair "
                f"measure."]

    SEED_CAVEAT = ("Each method was run once, with one seed, and the loss is measured on a small, "
                   "fixed slice of the validation text. Seed-to-seed variation was not measured, so "
                   "small differences between methods should not be read as a ranking.")

    def wall_paragraph(self, rows, events="the growth event itself"):
        walls = {r["name"]: r["wall"] for r in rows if r["wall"]}
        if self.names[0] in walls and len(walls) > 1:
            self.w("Wall time on this machine: " + ", ".join(
                f"{r['label']} {r['wall']:.0f} s" for r in rows if r["wall"]) +
                f". The total for the {len(walls)} runs was {sum(walls.values()) / 60:.1f} min. Wall "
                f"time also includes evaluation, start-up, {events} and whatever else "
                "the machine was running, so it is not a clean cost measure. The FLOPs columns are.")
            self.w("")

    # ---- output ----
    def finish(self, rows, title, event_title, **style):
        """Writes the Markdown and the plot, prints the summary table; the exit status. style:
        zoom_from (the plot's right panel shows the FLOPs from zoom_from × the baseline's budget
        on), key (where the left panel's legend goes, gnuplot), key_room (head room above the
        curves for that legend, as a fraction of their span above the target), event_label
        (event -> text placed at each event's marker)."""
        with open(self.args.md, "w") as f:
            f.write("\n".join(self.lines))
        with tempfile.TemporaryDirectory() as td:
            ok = plot(self, title, event_title, os.path.abspath(self.args.png), td, **style)
        for r in rows:  # the table on stdout too, for the log
            print(f"  {r['label']:<22} final {r['final']:.4f}  flops {sci(r['f_total'])}  reach "
                  f"{sci(r['f_reach']) if r['f_reach'] else 'not reached':>10}  "
                  f"s {pct(r['s']) if r['s'] is not None else '-':>7}")
        return 0 if ok else 1


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


def plot(x, title, event_title, png, workdir, zoom_from=0.6, key="bottom left", key_room=0.0,
         event_label=None):
    runs, names, target, label = x.runs, x.names, x.target, x.label
    term = gnuplot_terminal()
    if term is None:
        print(f"{x.tool}: gnuplot with a png terminal not found; no plot", file=sys.stderr)
        return False
    colors = ["#000000", "#d62728", "#ff7f0e", "#2ca02c", "#1f77b4", "#9467bd", "#8c564b"]
    files, evfiles, labfiles = [], [], []
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
        pl = None
        if evs and event_label:
            pl = os.path.join(workdir, f"{n}.labels.dat")
            with open(pl, "w") as f:
                f.writelines(f"{e['flops']:.9e} {max(e['loss_before'], e['loss_after']):.6f} "
                             f"\"{event_label(e)}\"\n" for e in runs[n]["events"])
        labfiles.append(pl)
    base = runs[names[0]]
    fmax = max(r["evals"][-1][0] for r in runs.values())
    fmin = min(r["evals"][0][0] for r in runs.values())
    vmax = max([v for r in runs.values() for _, v, _ in r["evals"]] +
               [max(e["loss_before"], e["loss_after"]) for r in runs.values() for e in r["events"]])
    fmin = min([fmin] + [e["flops"] for r in runs.values() for e in r["events"]])
    # zoom: the end of the baseline's budget, losses near the target
    zx0 = zoom_from * base["evals"][-1][0]
    zlo = min(v for r in runs.values() for f, v, _ in r["evals"] if f >= zx0)
    zhi = max(v for r in runs.values() for f, v, _ in r["evals"] if f >= zx0)
    # up to 0.15 above the target, or more if a run ends higher than that
    zhi = min(zhi, max(target + 0.15, max(r["evals"][-1][1] for r in runs.values()) + 0.05))
    pad = 0.1 * (zhi - zlo) + 0.005
    ytop = min(vmax, 3.6) + 0.05 + key_room * max(0.0, min(vmax, 3.6) - target)

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
        for k, pl in enumerate(labfiles):
            if pl:
                parts.append(f"'{pl}' using 1:2:3 with labels offset 0,1 font ',9' "
                             f"tc rgb '{colors[k % len(colors)]}' noenhanced notitle")
        parts.append("NaN with points pt 6 ps 1.8 lw 1.5 lc rgb '#000000' "
                     f"title '{event_title}' noenhanced")
        parts.append(f"{target} with lines dt 2 lw 1.5 lc rgb '#555555' "
                     f"title 'baseline final val loss ({target:.4f})' noenhanced")
        return ", \\\n  ".join(parts)

    def log_tics(lo, hi):
        t = []
        for k in range(int(math.floor(math.log10(lo))), int(math.ceil(math.log10(hi))) + 1):
            for m in (1, 2, 5):
                v = m * 10.0 ** k
                if lo <= v <= hi:
                    t.append(f"'{m}e{k}' {v:.3e}")
        return "(" + ", ".join(t) + ")"

    zoom_title = (f"last {100 * (1 - zoom_from):.0f}% of the baseline budget (same colours)"
                  if zoom_from >= 0.5 else
                  f"from {100 * zoom_from:.0f}% of the baseline budget on (same colours)")
    gp = f"""set terminal {term}
set output '{png}'
set multiplot layout 1,2 title '{title}'
set grid
set logscale x
set xtics {log_tics(fmin / 1.2, fmax * 1.1)}
set mxtics 10
set xlabel 'training FLOPs (log scale)'
set ylabel 'validation loss (nats/byte)'
set xrange [{fmin / 1.2:.4e}:{fmax * 1.1:.4e}]
set yrange [*:{ytop:.3f}]
set key {key} opaque box
set title 'whole run'
plot {curves()}
unset logscale x
set xtics autofreq
set mxtics default
set format x '%.1te%T'
set xlabel 'training FLOPs (linear)'
set xrange [{zx0:.4e}:{fmax * 1.02:.4e}]
set yrange [{zlo - pad:.4f}:{zhi + pad:.4f}]
set title '{zoom_title}'
unset key
plot {curves()}
unset multiplot
"""
    gpf = os.path.join(workdir, "plot.gp")
    with open(gpf, "w") as f:
        f.write(gp)
    r = subprocess.run(["gnuplot", gpf], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"{x.tool}: gnuplot failed:\n{r.stderr}", file=sys.stderr)
        return False
    return True
