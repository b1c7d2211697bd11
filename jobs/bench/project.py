#!/usr/bin/env python3
"""Scaling projection for pp x dp grids larger than this 2-core machine.

The model (every quantity per optimizer step; written out in docs/performance.md):
  t_mb   = (L/pp) * t_block + t_ends       compute of one micro-batch on the largest stage
  m      = G / (dp * mb)                   micro-batches per replica
  t_pipe = (m + pp - 1) * (t_mb + t_p2p)   1F1B: m micro-batches plus the fill/drain bubble
  t_p2p  = 2 * (a_bytes / B_p2p + lat)     activation forward, gradient backward, per hop
  t_ar   = 2 (dp-1)/dp * g_bytes / B_ar + 2 (dp-1) lat   ring all-reduce of one stage's grads
  t_step = t_pipe + (1 - overlap) * t_ar
  efficiency = t_ideal / t_step with t_ideal = G/mb * L * t_block / (pp * dp)
Inputs default to the values measured on this machine (jobs/bench/pipeline.sh and
an earlier run): t_block from the 1-stage time, B_p2p 12 GB/s, B_ar 7 GB/s in place;
jobs/bench/pipeline.sh passes the ones it measures (sprout bench --comm).
"""
import argparse


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--t-block-ms", type=float, default=75.6,
                   help="fwd+bwd of one block for one micro-batch (measured: 7408 ms / 16 mb / 6 blocks, less the ends)")
    p.add_argument("--t-ends-ms", type=float, default=10.0, help="embedding + head + optimizer share per micro-batch")
    p.add_argument("--layers", type=int, default=24)
    p.add_argument("--d-model", type=int, default=384)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--micro-batch", type=int, default=2)
    p.add_argument("--global-batch", type=int, default=512)
    p.add_argument("--b-p2p", type=float, default=12e9)
    p.add_argument("--b-ar", type=float, default=7e9)
    p.add_argument("--lat", type=float, default=2e-6)
    p.add_argument("--overlap", type=float, default=0.8, help="share of the all-reduce hidden behind the backward")
    a = p.parse_args()
    C, T, L, mb, G = a.d_model, a.seq, a.layers, a.micro_batch, a.global_batch
    block_params = 12 * C * C + 13 * C
    tb, te = a.t_block_ms / 1e3, a.t_ends_ms / 1e3
    act = mb * T * C * 4
    print(f"model: {L} blocks, d_model {C}, seq {T}; global batch {G} x {T} tokens, micro-batch {mb}")
    print(f"inputs: t_block {a.t_block_ms} ms, t_ends {a.t_ends_ms} ms, p2p {a.b_p2p/1e9:.0f} GB/s, "
          f"all-reduce {a.b_ar/1e9:.0f} GB/s, latency {a.lat*1e6:.0f} us, overlap {a.overlap:.0%}")
    dps = [1, 2, 4, 8, 16, 32, 64]
    print("efficiency (t_ideal / t_step); ranks = pp x dp")
    print("pp\\dp" + "".join(f"{d:>8}" for d in dps))
    for pp in (1, 2, 4, 8):
        row = f"{pp:>5}"
        for dp in dps:
            m = G // (dp * mb)
            if m < 1:
                row += f"{'-':>8}"
                continue
            t_mb = (L / pp) * tb + te
            t_p2p = 0 if pp == 1 else 2 * (act / a.b_p2p + a.lat)
            t_pipe = (m + pp - 1) * (t_mb + t_p2p)
            g_bytes = 4 * (L / pp * block_params + 256 * C)
            t_ar = 0 if dp == 1 else 2 * (dp - 1) / dp * g_bytes / a.b_ar + 2 * (dp - 1) * a.lat
            t_step = t_pipe + (1 - a.overlap) * t_ar
            t_ideal = (G / mb) * (L * tb + te) / (pp * dp)
            row += f"{t_ideal / t_step:>8.0%}"
        print(row)


if __name__ == "__main__":
    main()
