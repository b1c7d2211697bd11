"""The protocol's measures (growth-protocol §3.6), from the done records of the runs.

- Frontier L*(F): the baseline's annealed points (cooldown branches of the constant-LR run and
  the baseline's own full run at the frontier seed), made non-increasing in F and interpolated
  linearly in log F. F*(L) is its inverse; outside the frontier's range it is undefined.
- Pairing: seed k reads the same data in every arm. The baseline at seed k differs from the
  frontier's seed by delta_k at the full budget; seed k of a method is read against the frontier
  shifted by delta_k.
- s_eq = 1 - F_m / F*(L_m), per seed as a log ratio; the arm's figure is 1 - exp(mean) with a
  95% t-interval on the mean log ratio (paired through delta_k). One seed: no interval.
- FLOPs-to-target saving: target = the baseline's annealed full-budget loss at seed k; the FLOPs
  at which the arm's own annealed curve (its cooldown branches and full run, seed 1, shifted by
  the seed's full-budget difference) reaches it, against the baseline's FLOPs.
- Speedup sp = s / (1 - s); cheap-phase discount = 1 - (F_m / tokens_m) / (F_b / tokens_b),
  what the arm saves if it learned exactly as much per token as the baseline; learning gain =
  s_eq - discount, with s_eq's interval shifted by the discount.
Missing inputs give None, shown as such in the report."""
import math

T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086]


def t975(df):
    return T975[df - 1] if df <= len(T975) else 1.96


def monotone(points):
    """(F, L) sorted by F, L made non-increasing (a later point that is no better is dropped)."""
    out = []
    for f, l in sorted(points):
        if not out or l < out[-1][1]:
            out.append((f, l))
    return out


def f_star(front, loss):
    """FLOPs at which the frontier reaches loss (log-linear), None outside its range."""
    if len(front) < 2 or loss > front[0][1] or loss < front[-1][1]:
        return None
    for (f0, l0), (f1, l1) in zip(front, front[1:]):
        if l1 <= loss <= l0:
            t = (l0 - loss) / (l0 - l1)
            return math.exp(math.log(f0) + t * (math.log(f1) - math.log(f0)))
    return None


def f_star_clamped(front, loss):
    if not front:
        return None
    if loss > front[0][1]:
        return front[0][0]
    if loss < front[-1][1]:
        return front[-1][0]
    return f_star(front, loss) or front[0][0]


def frontier_points(plan, recs, key):
    """The baseline's annealed points at the chosen LR and the frontier's seed."""
    fs = plan.p["frontier_seed"]
    pts = []
    for n in plan.order:
        r = plan.runs[n]
        if n not in recs or r.pending:
            continue
        full_base = r.arm == "baseline" and r.seed == fs and r.cfg["train"]["lr"] == plan.lr
        if r.arm == "frontier" or full_base:
            pts.append((recs[n]["flops"], recs[n][key]))
    return monotone(pts)


def choice_score(front, rec, key="loss_tune"):
    """s_eq on the tune split, with F* clamped to the frontier's ends: only to rank arms."""
    f = f_star_clamped(front, rec[key])
    return 1 - rec["flops"] / f if f else -rec[key]


def log_ratio_interval(rs):
    """1 - exp(mean), and the 95% t-interval as savings (low, high); None when n < 2."""
    if not rs:
        return None, None, None
    n = len(rs)
    m = sum(rs) / n
    s = 1 - math.exp(m)
    if n < 2:
        return s, None, None
    sd = math.sqrt(sum((r - m) ** 2 for r in rs) / (n - 1))
    h = t975(n - 1) * sd / math.sqrt(n)
    return s, 1 - math.exp(m + h), 1 - math.exp(m - h)


def speedup(s):
    return None if s is None or s >= 1 else s / (1 - s)


def mean_sd(xs):
    if not xs:
        return None, None
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, None
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


class Analysis:
    def __init__(self, plan, recs, key="loss_report"):
        self.plan, self.recs, self.key = plan, recs, key
        self.front = frontier_points(plan, recs, key)
        self.fs = plan.p["frontier_seed"]
        self.base = {}  # seed -> the baseline's full run at the chosen LR
        for n in plan.order:
            r = plan.runs[n]
            if (n in recs and r.arm == "baseline" and not r.pending and
                    r.cfg["train"]["lr"] == plan.lr):
                self.base[r.seed] = recs[n]

    def delta(self, seed):
        if seed in self.base and self.fs in self.base:
            return self.base[seed][self.key] - self.base[self.fs][self.key]
        return 0.0

    def noise_floor(self):
        """The baseline's seed-to-seed spread and what it means for a saving."""
        ls = [r[self.key] for r in self.base.values()]
        m, sd = mean_sd(ls)
        if sd is None:
            return None
        txt = (f"Noise floor: the baseline's final loss over {len(ls)} seeds has sd {sd:.4f} nats "
               f"(report split).")
        b = self.base.get(self.fs)
        seg = [(f0, l0, f1, l1) for (f0, l0), (f1, l1) in zip(self.front, self.front[1:])
               if b and f0 <= b["flops"] <= f1 and f1 > f0]
        if seg:
            f0, l0, f1, l1 = seg[0]
            slope = (l0 - l1) / math.log(f1 / f0)  # nats per e-fold of FLOPs
            if slope > 0:
                txt += (f" Near the baseline's budget the frontier falls {slope:.4f} nats per e-fold "
                        f"of FLOPs, so 0.01 nats is worth about {100 * (1 - math.exp(-0.01 / slope)):.1f} "
                        f"points of saving.")
        return txt

    def runs_of(self, arm):
        """seed -> record of the arm's full-budget runs (stage screen/confirm/noise/sanity)."""
        out = {}
        for n in self.plan.order:
            r = self.plan.runs[n]
            if (n in self.recs and r.arm == arm and not r.pending and
                    r.stage in ("lr", "noise", "screen", "confirm", "sanity") and
                    r.cfg["train"]["lr"] == self.plan.lr):
                out[r.seed] = self.recs[n]
        return out

    def own_curve(self, arm):
        """The arm's annealed points at seed 1: its cooldown branches and its full run."""
        pts = [(self.recs[n]["flops"], self.recs[n][self.key]) for n in self.plan.order
               if n in self.recs and self.plan.runs[n].arm == f"{arm}-branch"]
        full = self.runs_of(arm).get(1)
        if full:
            pts.append((full["flops"], full[self.key]))
        return monotone(pts)

    def arm(self, arm):
        runs = self.runs_of(arm)
        if not runs:
            return None
        seeds = sorted(runs)
        losses = [runs[s][self.key] for s in seeds]
        lm, lsd = mean_sd(losses)
        ses = [runs[s].get(f"{self.key}_se") for s in seeds]
        se = sum(ses) / len(ses) if all(x is not None for x in ses) else None
        req = [math.log(runs[s]["flops"] / f) for s in seeds
               for f in [f_star(self.front, runs[s][self.key] - self.delta(s))] if f]
        s_eq, lo, hi = log_ratio_interval(req) if len(req) == len(seeds) else (None, None, None)
        bound = "—"
        if s_eq is None and len(self.front) >= 2:  # outside the frontier: a bound, not a value
            lo_l, hi_l = self.front[-1][1], self.front[0][1]
            adj = [runs[s][self.key] - self.delta(s) for s in seeds]
            if all(l < lo_l for l in adj):
                bound = f"> {100 * (1 - sum(runs[s]['flops'] for s in seeds) / len(seeds) / self.front[-1][0]):+.1f}% (below the frontier's lowest loss)"
            elif all(l > hi_l for l in adj):
                bound = f"< {100 * (1 - sum(runs[s]['flops'] for s in seeds) / len(seeds) / self.front[0][0]):+.1f}% (above the frontier's highest loss)"
        # FLOPs to reach the baseline's full-budget loss, paired by seed
        curve = self.own_curve(arm) if arm != "baseline" else self.front
        tgt = []
        if len(curve) >= 2 and 1 in runs:
            for s in seeds:
                if s not in self.base:
                    continue
                eps = runs[s][self.key] - runs[1][self.key]
                f = f_star(curve, self.base[s][self.key] - eps)
                if f:
                    tgt.append(math.log(f / self.base[s]["flops"]))
        n_tgt = len([s for s in seeds if s in self.base])
        s_t, t_lo, t_hi = log_ratio_interval(tgt) if tgt and len(tgt) == n_tgt else (None, None, None)
        t_bound = "—"
        if s_t is None and len(curve) >= 2 and 1 in runs and 1 in self.base and arm != "baseline":
            # the arm's own curve ends above the baseline's loss: it needs more FLOPs than its
            # longest branch, so its saving is below what that branch would give
            if all(l > self.base[1][self.key] for _, l in curve):
                f_max = max(f for f, _ in curve)
                t_bound = (f"< {100 * (1 - f_max / self.base[1]['flops']):+.1f}% (its longest "
                           f"branch ends above the target loss)")
        b = self.base.get(1) or (next(iter(self.base.values())) if self.base else None)
        r1 = runs[seeds[0]]
        disc = (1 - (r1["flops"] / r1["tokens"]) / (b["flops"] / b["tokens"])) if b else None
        gain = s_eq - disc if s_eq is not None and disc is not None else None
        g_lo = lo - disc if lo is not None and disc is not None else None
        g_hi = hi - disc if hi is not None and disc is not None else None
        walls = [runs[s]["wall_s"] for s in seeds]
        tps = [runs[s]["tok_per_s"] for s in seeds if runs[s].get("tok_per_s")]
        return {"name": arm, "seeds": seeds, "final_loss": lm, "final_loss_sd": lsd,
                "eval_se": se, "flops": sum(runs[s]["flops"] for s in seeds) / len(seeds),
                "tokens": r1["tokens"], "saving": s_eq, "saving_bound": bound, "saving_ci_low": lo, "saving_ci_high": hi,
                "speedup": speedup(s_eq), "speedup_ci_low": speedup(lo),
                "speedup_ci_high": speedup(hi), "saving_target": s_t,
                "saving_target_ci_low": t_lo, "saving_target_ci_high": t_hi,
                "saving_target_bound": t_bound,
                "speedup_target": speedup(s_t), "discount": disc, "learning_gain": gain,
                "learning_gain_ci_low": g_lo, "learning_gain_ci_high": g_hi,
                "wall_s": sum(walls) / len(walls), "tok_per_s": sum(tps) / len(tps) if tps else None,
                "events": r1.get("events", []), "tau": self.plan.runs[
                    next(n for n in self.plan.order if self.plan.runs[n].arm == arm)].tau}
