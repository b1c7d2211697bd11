"""Loads a sprout checkpoint's /model into the PyTorch reference of its block kind (GPT-2,
LlamaForCausalLM for model.block: llama, BertForMaskedLM for bert; refs.py picks it from /spec)
and evaluates a token file exactly as `sprout eval` does (window i = tokens [i*T, i*T+T], N
windows spread over the file, mean over every predicted token; bert: each window masked as
sprout's eval masks it, mean over the selected positions), so the checkpoint is shown to be a
plain Hugging Face-named state dict.

usage: /usr/bin/python3 tests/torch/eval_ckpt.py CKPT.h5 TOKENS.bin N_WINDOWS
prints: val_loss <float>
"""
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_ref  # noqa: E402
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
        block, seed, V = refs.block_of(sp), int(f["train"].attrs["seed"]), int(sp["vocab"])
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
    if block == "bert":
        # the fixed eval masking: window j of the set as sample j of step 2^64 - 1, restated by
        # bert_ref.mlm_mask (its own Philox); the special ids are the vocabulary's last four
        n_normal = V - bert_ref.MLM_NSPECIAL
        xy = [bert_ref.mlm_mask(seed, 2**64 - 1, j, x[j].numpy(), n_normal) for j in range(n)]
        x = torch.tensor(np.stack([a for a, _ in xy]))
        y = torch.tensor(np.stack([b for _, b in xy]))
    with torch.no_grad():
        _, loss = model(x, y)
    print(f"val_loss {loss.item():.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
