"""Check a sprout plan dump (tests/parity_dump.c with a method) against the PyTorch reference.

The dump holds the stored model, one batch, one step's execution plan and sprout's gradients
through it. The reference runs position p of the plan on the module of stored block
group[pos[p]] (so a weight-sharing group is ONE module used at several positions and autograd
sums its gradients) with both residual branches scaled by scale[pos[p]]; skipped blocks do not
run. Checks, each max|a-b| / max|b| <= tol:
  - sprout's gradient of every stored block (a group's copies each hold the group's total, a
    skipped block zero) and of the globals against float64 autograd;
  - the same gradients against the sum of the per-position gradients of sprout's unshared copy
    (/unshared: D blocks, block q a copy of the block position q runs);
  - for every tensor of every group's module, central finite differences in float64 (Richardson
    extrapolated) of the reference loss along one random direction against sprout's gradient
    (the directional derivative), so the sum over positions is checked without autograd.

usage: check_plan.py DUMP.h5 [--tol 1e-4]
exit:  0 all agree, 1 some disagree, 2 bad input
"""
import argparse
import math
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_ref  # noqa: E402


def block_name(i, suffix):
    return f"transformer.h.{i}.{suffix}"


def plan_loss(model, plan, inp, tgt):
    """mean cross-entropy of the network the plan runs"""
    t = model.transformer
    T = inp.shape[1]
    x = t.wte(inp) + t.wpe(torch.arange(T))
    for b in plan["pos"]:
        blk, c = t.h[int(plan["group"][b])], float(plan["scale"][b])
        x = x + c * blk.attn(blk.ln_1(x))
        x = x + c * blk.mlp(blk.ln_2(x))
    logits = t.ln_f(x) @ t.wte.weight.t()
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))


def rel(a, b):
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    ref = float(np.max(np.abs(b))) if b.size else 0.0
    if not math.isfinite(diff):
        return math.inf
    return diff / ref if ref > 0 else (0.0 if diff == 0 else math.inf)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dump")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    try:
        f = h5py.File(a.dump, "r")
        at = {k: int(np.asarray(f.attrs[k]).reshape(())) for k in
              ["vocab", "seq_len", "d_model", "n_head", "d_ff", "n_layer", "batch"]}
        cfg = gpt2_ref.Config(at["vocab"], at["seq_len"], at["d_model"], at["n_head"],
                              at["n_layer"], at["d_ff"])
        model = gpt2_ref.GPT2(cfg).double()
        gpt2_ref.load_group(model, f["model"])
        plan = {k: f[f"plan/{k}"][()] for k in ("pos", "group", "train", "scale")}
        sgrad = {n: f[f"grad/{n}"][()].astype(np.float64) for n, _ in model.named_parameters()}
        unshared = {n: f[f"unshared/{n}"][()].astype(np.float64) for n in f["unshared"]}
        inp = torch.from_numpy(f["batch/inputs"][()].astype(np.int64))
        tgt = torch.from_numpy(f["batch/targets"][()].astype(np.int64))
    except (OSError, KeyError, ValueError) as e:
        print(f"check_plan: {a.dump}: cannot read: {e}", file=sys.stderr)
        return 2
    L, D = at["n_layer"], len(plan["pos"])
    suffixes = [n.split(".", 3)[3] for n, _ in model.named_parameters() if ".h.0." in n]
    print(f"check_plan: {a.dump}: {L} stored blocks, positions {list(plan['pos'])}, groups "
          f"{list(plan['group'])}, trained {list(plan['train'])}, scales {list(plan['scale'])}")

    loss = plan_loss(model, plan, inp, tgt)
    loss.backward()
    tg = {n: (p.grad.numpy() if p.grad is not None else np.zeros(tuple(p.shape)))
          for n, p in model.named_parameters()}
    rows = []
    for n, _ in model.named_parameters():
        want = tg[n]
        if ".h." in n:  # stored block b holds its group's gradient, zero when skipped
            b, suf = int(n.split(".")[2]), n.split(".", 3)[3]
            g = int(plan["group"][b])
            want = tg[block_name(g, suf)] if plan["train"][b] else np.zeros_like(want)
        rows.append((f"torch {n}", rel(sgrad[n], want)))
    # the unshared copy: position q's block gradient adds into the group of the block it runs
    for b in range(L):
        g = int(plan["group"][b])
        for suf in suffixes:
            total = sum((unshared[block_name(q, suf)] for q in range(D)
                         if int(plan["group"][plan["pos"][q]]) == g and plan["train"][b]),
                        np.zeros_like(sgrad[block_name(b, suf)]))
            rows.append((f"unshared {block_name(b, suf)}", rel(sgrad[block_name(b, suf)], total)))
    # finite differences along one random direction per tensor of every group's module
    params = dict(model.named_parameters())
    for g in sorted({int(plan["group"][b]) for b in plan["pos"]}):
        for suf in suffixes:
            p = params[block_name(g, suf)]
            # random magnitudes along the signs of the reference gradient: the directional
            # derivative then has no cancellation that float32 gradients could not resolve
            d = torch.randn(p.shape, dtype=torch.float64).abs() * torch.sign(p.grad)
            base = p.detach().clone()

            def f_at(e):
                with torch.no_grad():
                    p.copy_(base + e * d)
                    return plan_loss(model, plan, inp, tgt).item()

            def cd(h):
                return (f_at(h) - f_at(-h)) / (2 * h)

            h = 1e-3
            fd = (4 * cd(h / 2) - cd(h)) / 3
            with torch.no_grad():
                p.copy_(base)
            an = float(np.sum(sgrad[block_name(g, suf)] * d.numpy()))
            rows.append((f"fd {block_name(g, suf)}", abs(an - fd) / max(abs(fd), 1e-8)))
    bad = [r for r in rows if not r[1] <= a.tol]
    worst = max(rows, key=lambda r: r[1] if math.isfinite(r[1]) else math.inf)
    for kind in ("torch", "unshared", "fd"):
        k = [r[1] for r in rows if r[0].startswith(kind)]
        print(f"  {kind:<9} {len(k):3d} tensors, worst rel {max(k):.3e}")
    for name, r in bad:
        print(f"FAIL: {name}: rel {r:.3e} > {a.tol:g}")
    print(f"check_plan: {'ok' if not bad else 'FAILED'} (worst {worst[0]}: {worst[1]:.3e})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
