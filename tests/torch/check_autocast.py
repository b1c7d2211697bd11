"""Check a bf16 sprout parity dump against PyTorch autocast on the same weights.

The dump is tests/parity_dump.c's (format in check_parity.py), written with `bf16`: sprout ran
every matrix product as a oneDNN bf16 matmul with fp32 accumulation. Here the float32 reference
model (gpt2_ref.py) runs the same batch and the same 20 AdamW steps under
torch.autocast("cpu", dtype=torch.bfloat16), which rounds the inputs of every matmul to bf16 as
well (and, unlike sprout, also keeps the attention scores and matmul outputs in bf16). The two
mixed-precision losses must agree within --tol relative (default 1%): the one-batch loss and
every training loss.

usage: check_autocast.py DUMP.h5 [--tol 0.01]
exit:  0 all agree, 1 some disagree, 2 bad input (one line naming file and dataset)
"""
import argparse
import os
import sys

import h5py
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_parity  # noqa: E402
import gpt2_ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dump")
    ap.add_argument("--tol", type=float, default=0.01)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    try:
        with h5py.File(a.dump, "r") as f:
            if int(f.attrs.get("bf16", 0)) != 1:
                raise check_parity.BadInput("attribute /bf16: not 1 (not a bf16 dump)")
        at, model, _, d = check_parity.load(a.dump, torch.float32)
    except check_parity.BadInput as e:
        print(f"check_autocast: {a.dump}: {e}", file=sys.stderr)
        return 2
    except (OSError, KeyError, ValueError, TypeError) as e:
        print(f"check_autocast: {a.dump}: cannot read: {e}", file=sys.stderr)
        return 2
    inputs, targets = d["inputs"], d["targets"]
    with torch.no_grad():
        _, l32 = model(inputs, targets)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            _, lac = model(inputs, targets)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = gpt2_ref.run_training(model, at, d["tinputs"], d["ttargets"])
    rows = [("batch loss", d["loss"].item(), lac.item())]
    rows += [(f"train/loss[{s}]", d["losses"][s].item(), t) for s, t in enumerate(losses)]
    print(f"check_autocast: {a.dump}  tol={a.tol:g}  model V={at['vocab']} T={at['seq_len']} "
          f"C={at['d_model']} L={at['n_layer']}; fp32 torch loss {l32.item():.6f}")
    print(f"{'':<16} {'sprout bf16':>14} {'torch autocast':>14} {'rel':>10}")
    bad = 0
    for name, s, t in rows:
        rel = abs(s - t) / abs(t)
        ok = rel <= a.tol  # NaN fails
        bad += not ok
        print(f"{name:<16} {s:14.6f} {t:14.6f} {rel:10.3e}{'' if ok else '  FAIL'}")
    print(f"autocast: {len(rows) - bad} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
