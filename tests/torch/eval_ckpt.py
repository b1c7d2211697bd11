"""Loads a sprout checkpoint's /model into the PyTorch reference of its block kind (GPT-2, or
LlamaForCausalLM for model.block: llama; refs.py picks it from /spec) and evaluates a token
file exactly as `sprout eval` does (window i = tokens [i*T, i*T+T], N windows spread over the
file, mean over every predicted token), so the checkpoint is shown to be a plain Hugging Face-named state dict.

usage: /usr/bin/python3 tests/torch/eval_ckpt.py CKPT.h5 TOKENS.bin N_WINDOWS
prints: val_loss <float>
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
    if len(sys.argv) != 4:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    ckpt, tokens, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(1)
    with h5py.File(ckpt, "r") as f:
        sp = f["spec"].attrs
        T = int(sp["seq_len"])
        model = refs.make_model(sp).double()
        gpt2_ref.load_group(model, f["model"])
    raw = open(tokens, "rb").read()
    assert raw[:8] == b"SPRTOK01", f"{tokens}: not a sprout token file"
    count = int.from_bytes(raw[12:20], "little")
    tok = np.frombuffer(raw, dtype="<u2", count=count, offset=32).astype(np.int64)
    avail = (len(tok) - 1) // T
    n = min(n, avail) if n > 0 else avail
    # an N-window subset is the middle window of each of N equal strata (sp_data_eval_pick)
    pick = [((2 * j + 1) * avail) // (2 * n) for j in range(n)]
    x = torch.tensor(np.stack([tok[i * T:i * T + T] for i in pick]))
    y = torch.tensor(np.stack([tok[i * T + 1:i * T + T + 1] for i in pick]))
    with torch.no_grad():
        _, loss = model(x, y)
    print(f"val_loss {loss.item():.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
