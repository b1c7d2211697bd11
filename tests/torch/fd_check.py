"""Whole-model finite-difference check of sprout's gradients, in double precision.

sprout runs in fp32, whose per-token loss rounding (~1e-7) makes a sharp finite-difference
check of small gradients impossible on sprout's own forward. So the function comes from the
float64 reference model of the dump's block kind (refs.py: gpt2_ref or llama_ref, on the
dump's weights and batch) and the gradients from
sprout (/grad in the parity dump written by tests/parity_dump.c). For every tensor, along a
random unit direction d:

    fd = (L(p + h d) - L(p - h d)) / 2h     in float64, h = 1e-4, Richardson-extrapolated
    |fd - <g_sprout, d>| <= 1e-4 * max(|<g_sprout, d>|, 1e-3 * |g_sprout|, 1e-6 * G)

G the largest gradient norm of a tensor of the model: a gradient that is 0 in exact arithmetic
(bert's attention key bias, whose shift softmax ignores) is fp32 rounding noise in sprout, and is
measured against the model's gradients rather than against itself.

Also checks the reference's own autograd against the same differences at 1e-7.

usage: /usr/bin/python3 tests/torch/fd_check.py DUMP.h5
"""
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_ref  # noqa: E402
import refs  # noqa: E402


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    path = sys.argv[1]
    torch.manual_seed(0)
    torch.set_num_threads(1)
    try:
        f = h5py.File(path, "r")
        at = f.attrs
        model = refs.make_model(at).double()
        gpt2_ref.load_group(model, f["model"])
        inputs = torch.from_numpy(f["batch/inputs"][()]).long()
        targets = torch.from_numpy(f["batch/targets"][()]).long()
        sprout_grads = {n: torch.from_numpy(f["grad"][n][()]).double()
                        for n, _ in model.named_parameters()}
    except (OSError, KeyError, ValueError) as e:
        print(f"fd_check: {path}: {e}", file=sys.stderr)
        return 2
    _, _, ref_grads = gpt2_ref.grads_at(model, inputs, targets)

    def loss_at():
        with torch.no_grad():
            return model(inputs, targets)[1].item()

    gnorm = max(float(g.norm()) for g in sprout_grads.values())
    gen = torch.Generator().manual_seed(1)
    h = 1e-4
    passed = failed = 0
    worst = (0.0, "")
    for name, p in model.named_parameters():
        d = torch.randn(p.shape, generator=gen, dtype=torch.float64)
        d /= d.norm()
        p0 = p.detach().clone()
        est = []
        for hh in (h, h / 2):
            with torch.no_grad():
                p.copy_(p0 + hh * d)
                lp = loss_at()
                p.copy_(p0 - hh * d)
                lm = loss_at()
                p.copy_(p0)
            est.append((lp - lm) / (2 * hh))
        fd = (4 * est[1] - est[0]) / 3
        g_s = float((sprout_grads[name] * d).sum())
        g_r = float((ref_grads[name] * d).sum())
        scale = max(abs(g_s), 1e-3 * float(sprout_grads[name].norm()), 1e-6 * gnorm)
        rel = abs(fd - g_s) / scale
        ok = rel <= 1e-4 and abs(fd - g_r) <= 1e-7 * max(abs(g_r), 1e-3)
        if rel > worst[0]:
            worst = (rel, name)
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"FAIL {name}: fd {fd:.10g}  sprout {g_s:.10g}  reference {g_r:.10g}  "
                  f"rel {rel:.2e}")
    print(f"worst relative error of sprout's directional derivative: {worst[0]:.2e} ({worst[1]})")
    print(f"fd_check: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
