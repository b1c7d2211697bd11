"""Write a parity dump computed by PyTorch itself (small random model).

The dump has exactly the format of tests/parity_dump.c, so check_parity.py can be tested without
the C side: a PyTorch dump must pass, a corrupted one must fail (tests/torch/test_checker.sh).

usage: make_dump.py OUT.h5 [--vocab 11 --seq-len 8 --d-model 16 --n-head 2 --n-layer 2
                            --batch 2 --steps 20 --dtype float32 --seed 0 --lr 1e-3 ...]
"""
import argparse
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    for k, v in [("vocab", 11), ("seq-len", 8), ("d-model", 16), ("n-head", 2), ("n-layer", 2),
                 ("d-ff", 0), ("batch", 2), ("steps", 20), ("seed", 0)]:
        ap.add_argument("--" + k, type=int, default=v)
    for k, v in [("lr", 1e-3), ("beta1", 0.9), ("beta2", 0.95), ("eps", 1e-8),
                 ("weight-decay", 0.1), ("grad-clip", 1.0)]:
        ap.add_argument("--" + k, type=float, default=v)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    torch.set_num_threads(1)
    dtype = getattr(torch, a.dtype)
    cfg = gpt2_ref.Config(a.vocab, a.seq_len, a.d_model, a.n_head, a.n_layer, a.d_ff)
    model = gpt2_ref.init_weights(gpt2_ref.GPT2(cfg), a.seed)
    g = torch.Generator().manual_seed(a.seed + 1)
    with torch.no_grad():  # LN gains 1 and biases 0 would hide errors in their gradients
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(0.1 * (torch.rand(p.shape, generator=g) - 0.5))
    model = model.to(dtype)  # weights stay float32-exact, so /model is exactly what ran
    B, T, S, V = a.batch, a.seq_len, a.steps, a.vocab
    inp = torch.randint(V, (B, T), generator=g)
    tgt = torch.randint(V, (B, T), generator=g)
    tin = torch.randint(V, (S, B, T), generator=g)
    ttg = torch.randint(V, (S, B, T), generator=g)
    hp = {"lr": a.lr, "beta1": a.beta1, "beta2": a.beta2, "eps": a.eps,
          "weight_decay": a.weight_decay, "grad_clip": a.grad_clip}

    f32 = lambda t: t.detach().cpu().numpy().astype(np.float32)  # noqa: E731
    i32 = lambda t: t.numpy().astype(np.int32)  # noqa: E731
    with h5py.File(a.out, "w") as f:
        for k, v in [("vocab", V), ("seq_len", T), ("d_model", cfg.d_model), ("n_head", cfg.n_head),
                     ("d_ff", cfg.d_ff), ("n_layer", cfg.n_layer), ("batch", B), ("steps", S)]:
            f.attrs[k] = np.int64(v)
        for k, v in hp.items():
            f.attrs[k] = np.float64(v)
        for n, p in model.named_parameters():
            f[f"model/{n}"] = f32(p)
        f["batch/inputs"], f["batch/targets"] = i32(inp), i32(tgt)
        logits, loss, grads = gpt2_ref.grads_at(model, inp, tgt)
        f["out/logits"] = f32(logits)
        f["out/loss"] = f32(loss.reshape(1))
        for n, gr in grads.items():
            f[f"grad/{n}"] = f32(gr)
        losses = gpt2_ref.run_training(model, hp, tin, ttg)
        f["train/inputs"], f["train/targets"] = i32(tin), i32(ttg)
        f["train/losses"] = np.array(losses, dtype=np.float32)


if __name__ == "__main__":
    main()
