"""Check a sprout parity dump against the PyTorch reference model of its block kind (gpt2_ref.py,
llama_ref.py or bert_ref.py by the dump's attribute `block`; refs.py picks it).

The dump (written by tests/parity_dump.c, or by make_dump.py for self-tests) holds the initial
weights, one batch with sprout's logits, loss and every parameter gradient, and S AdamW steps
with their losses. This script recomputes all of it in PyTorch -- by default in float64, so the
measured error is sprout's float32 rounding -- and compares rel = max|a-b| / max|b| <= tol
(b = torch) for the logits, the loss, each gradient tensor and each training loss.

usage: check_parity.py DUMP.h5 [--dtype float64|float32] [--tol 1e-4]
exit:  0 all agree, 1 some disagree, 2 bad input (one line naming file and dataset)

Dump layout (HDF5, floats float32, ints int32):
  / attrs: vocab seq_len d_model n_head d_ff n_layer batch steps (int64);
           lr beta1 beta2 eps weight_decay grad_clip (float64)
  /model/<HF name>  initial weights          /batch/inputs, /batch/targets  [B,T]
  /out/logits [B,T,V], /out/loss [1]         /grad/<HF name>  gradients of the mean loss
  /train/inputs, /train/targets [S,B,T]      /train/losses [S]  loss before update s
Training: constant lr, AdamW (decay on 2-D tensors only), clip_grad_norm_(grad_clip) if > 0.
"""
import argparse
import math
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_ref  # noqa: E402
import refs  # noqa: E402

INT_ATTRS = ["vocab", "seq_len", "d_model", "n_head", "d_ff", "n_layer", "batch", "steps"]
FLOAT_ATTRS = ["lr", "beta1", "beta2", "eps", "weight_decay", "grad_clip"]


class BadInput(Exception):
    pass


def read(f, path, shape, kind):
    """Dataset `path` as a numpy array, checked for existence, shape and kind ('f' or 'i')."""
    if path not in f:
        raise BadInput(f"{path}: missing")
    d = f[path]
    if not isinstance(d, h5py.Dataset):
        raise BadInput(f"{path}: not a dataset")
    if tuple(d.shape) != tuple(shape):
        raise BadInput(f"{path}: shape {tuple(d.shape)}, expected {tuple(shape)}")
    if d.dtype.kind not in (kind, "u" if kind == "i" else kind):
        raise BadInput(f"{path}: dtype {d.dtype}, expected {'float' if kind == 'f' else 'int'}")
    return d[()]


def load(path, dtype):
    """Everything in the dump as torch tensors; raises BadInput."""
    with h5py.File(path, "r") as f:
        at = {}
        for k in INT_ATTRS + FLOAT_ATTRS:
            if k not in f.attrs:
                raise BadInput(f"attribute /{k}: missing")
            at[k] = (int if k in INT_ATTRS else float)(np.asarray(f.attrs[k]).reshape(()))
        try:
            model = refs.make_model(f.attrs).to(dtype)
        except (KeyError, ValueError, ZeroDivisionError) as e:
            raise BadInput(f"attributes /: {e}")
        at["block"] = refs.block_of(f.attrs)
        B, T, V, S = at["batch"], at["seq_len"], at["vocab"], at["steps"]
        shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
        w = {n: read(f, f"/model/{n}", s, "f") for n, s in shapes.items()}
        g = {n: read(f, f"/grad/{n}", s, "f") for n, s in shapes.items()}
        d = {k: read(f, p, s, kd) for k, p, s, kd in [
            ("inputs", "/batch/inputs", (B, T), "i"), ("targets", "/batch/targets", (B, T), "i"),
            ("logits", "/out/logits", (B, T, V), "f"), ("loss", "/out/loss", (1,), "f"),
            ("tinputs", "/train/inputs", (S, B, T), "i"),
            ("ttargets", "/train/targets", (S, B, T), "i"),
            ("losses", "/train/losses", (S,), "f")]}
    for k, p in [("inputs", "/batch/inputs"), ("targets", "/batch/targets"),
                 ("tinputs", "/train/inputs"), ("ttargets", "/train/targets")]:
        lo = refs.min_target(at["block"]) if "targets" in k else 0
        if d[k].size and (d[k].min() < lo or d[k].max() >= V):
            raise BadInput(f"{p}: token ids outside [{lo}, {V})")
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(torch.from_numpy(w[n]))
    tens = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float64))  # noqa: E731
    idx = lambda a: torch.from_numpy(a.astype(np.int64))  # noqa: E731
    d = {k: idx(v) if d[k].dtype.kind in "iu" else tens(v) for k, v in d.items()}
    return at, model, {n: tens(v) for n, v in g.items()}, d


def rel_err(a, b):
    """max|a-b| / max|b|, inf if anything is non-finite."""
    a, b = a.double(), b.double()
    diff = (a - b).abs().max().item() if a.numel() else 0.0
    ref = b.abs().max().item() if b.numel() else 0.0
    if not (math.isfinite(diff) and math.isfinite(ref)):
        return math.inf, diff, ref
    return (diff / ref if ref > 0 else (0.0 if diff == 0 else math.inf)), diff, ref


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dump")
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    dtype = getattr(torch, a.dtype)
    try:
        at, model, cgrads, d = load(a.dump, dtype)
    except BadInput as e:
        print(f"check_parity: {a.dump}: {e}", file=sys.stderr)
        return 2
    except (OSError, KeyError, ValueError, TypeError) as e:
        print(f"check_parity: {a.dump}: cannot read: {e}", file=sys.stderr)
        return 2

    logits, loss, grads = gpt2_ref.grads_at(model, d["inputs"], d["targets"])
    rows = [("logits", tuple(logits.shape), *rel_err(d["logits"], logits)),
            ("loss", (1,), *rel_err(d["loss"], loss.reshape(1)))]
    # A gradient that is 0 in exact arithmetic (bert's attention key bias: adding a constant to
    # every key of a row shifts that row's scores by one constant, which softmax ignores) is 0
    # in float64 up to rounding and sprout's fp32 rounding noise: there the error is measured
    # against the model's largest gradient instead of its own.
    gmax = max(g.abs().max().item() for g in grads.values())
    def grad_err(a, b):
        rel, diff, ref = rel_err(a, b)
        if ref <= 1e-12 * gmax and math.isfinite(diff):
            return diff / gmax, diff, gmax
        return rel, diff, ref
    rows += [(f"grad/{n}", tuple(g.shape), *grad_err(cgrads[n], g)) for n, g in grads.items()]
    losses = torch.tensor(gpt2_ref.run_training(model, at, d["tinputs"], d["ttargets"]),
                          dtype=torch.float64)
    rows += [(f"train/loss[{s}]", (1,), *rel_err(d["losses"][s:s + 1], losses[s:s + 1]))
             for s in range(len(losses))]

    bad = [r for r in rows if not r[2] <= a.tol]  # NaN/inf fail too
    worst = sorted(rows, key=lambda r: -r[2] if math.isfinite(r[2]) else -math.inf)
    shown = worst[:10] + [r for r in bad if r not in worst[:10]]
    print(f"check_parity: {a.dump}  dtype={a.dtype}  tol={a.tol:g}  "
          f"model {at['block']} V={at['vocab']} T={at['seq_len']} C={at['d_model']} H={at['n_head']} "
          f"L={at['n_layer']} F={at['d_ff']} B={at['batch']} S={at['steps']}")
    print(f"{'tensor':<40} {'shape':<14} {'rel':>10} {'max|a-b|':>10} {'max|b|':>10}")
    for name, shape, rel, diff, ref in shown:
        print(f"{name:<40} {str(list(shape)):<14} {rel:10.3e} {diff:10.3e} {ref:10.3e}"
              f"{'' if rel <= a.tol else '  FAIL'}")
    if len(rows) > len(shown):
        print(f"... and {len(rows) - len(shown)} more, all within tol")
    print(f"{'step':>4} {'sprout loss':>14} {'torch loss':>14} {'rel':>10}")
    for s in range(len(losses)):
        sl, tl = d["losses"][s].item(), losses[s].item()
        print(f"{s:4d} {sl:14.8f} {tl:14.8f} {abs(sl - tl) / abs(tl) if tl else math.inf:10.3e}")
    print(f"parity: {len(rows) - len(bad)} passed, {len(bad)} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
