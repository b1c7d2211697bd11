"""PyTorch training-step benchmark: the yardstick for sprout's CPU throughput.

Times the model of tests/torch/gpt2_ref.py (sprout's spec), or with --block llama the
LlamaForCausalLM of tests/torch/llama_ref.py (HF's semantics; untied head unless --tie-head 1),
in float32: one step = forward +
backward + clip_grad_norm_(1.0) + AdamW on a fresh random batch, --warmup untimed steps, then
--steps timed with perf_counter. Prints one JSON line:
  {"impl":"pytorch","threads":N,"blas_threads":..,"mkldnn":..,"omp_wait":..,"tok_per_s":..,
   "ms_per_step":median,"ms_per_step_min":..,"peak_rss_mib":..,"openblas_core":..,"torch":..}

With --precision bf16 the forward and the loss run under torch.autocast("cpu", bfloat16) (its
matmuls in bf16 through oneDNN, weights and optimizer state fp32): what a PyTorch user picks for
mixed precision on a CPU, and the anchor of sprout's run.precision: bf16.

usage: torch_gpt.py --threads N [--blas-threads M] [--mkldnn on|off] [--omp-wait passive|active|env]
                    [--precision fp32|bf16] [--block gpt2|llama] [--tie-head 0|1]
                    [--vocab 256 --seq-len 256 --d-model 384 --n-head 6 --n-layer 6 --batch 8
                     --steps 10 --warmup 2]

How Debian's python3-torch gets its BLAS (checked on bookworm, torch 1.13.1+dfsg):
  * torch.__config__.show() says BLAS_INFO=generic, MKL not found, MKL-DNN (oneDNN) 2.6.3, OpenMP.
  * `ldd /usr/lib/x86_64-linux-gnu/libtorch_cpu.so.1.13` (torch/lib/libtorch_cpu.so symlinks
    there): libtorch_cpu NEEDs the generic `libblas.so.3` / `liblapack.so.3`; update-alternatives
    points those at /usr/lib/x86_64-linux-gnu/openblas-pthread/, whose libblas.so.3 is a thin
    wrapper NEEDing libopenblas.so.0 -> openblas-pthread/libopenblasp-r0.3.21.so (pthread build).
  * /proc/self/maps after a matmul shows that libopenblasp-r0.3.21.so mapped; openblas_core
    below is its openblas_get_corename() (a DYNAMIC_ARCH build: "Zen" on the AMD EPYC here).
  * So float32 GEMMs (aten addmm/mm/bmm -> cpublas::gemm -> sgemm_) run in OpenBLAS with its
    own pthread pool, sized by OPENBLAS_NUM_THREADS (default: all cores), not by
    torch.set_num_threads; torch's elementwise/LayerNorm/softmax kernels use OpenMP (libgomp)
    sized by torch.set_num_threads. oneDNN is only used for convolutions and bf16 matmuls, so
    torch.backends.mkldnn does not touch this model's float32 path.
  This script sets both pools: torch.set_num_threads(--threads) and, through ctypes,
  openblas_set_num_threads(--blas-threads, default --threads). With 2+ threads the two pools
  share the cores: libgomp's workers spin after every parallel region and steal the cores from
  OpenBLAS's threads, so the default here is OMP_WAIT_POLICY=PASSIVE (set before torch loads).
"""
import argparse
import ctypes
import json
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "torch"))


def blas_lib():
    """ctypes handle of the BLAS library mapped into this process, or None."""
    with open("/proc/self/maps") as f:
        paths = {ln.split()[-1] for ln in f if "/" in ln}
    for key in ("libopenblas", "libblas"):
        for p in sorted(paths):
            if key in os.path.basename(p):
                try:
                    return ctypes.CDLL(p)
                except OSError:
                    pass
    return None


def openblas_core(lib):
    if lib is None or not hasattr(lib, "openblas_get_corename"):
        return "unknown"
    lib.openblas_get_corename.restype = ctypes.c_char_p
    return lib.openblas_get_corename().decode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--blas-threads", type=int, default=0, help="OpenBLAS threads (0: --threads)")
    ap.add_argument("--mkldnn", choices=["on", "off"], default="on")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--block", choices=["gpt2", "llama"], default="gpt2")
    ap.add_argument("--tie-head", type=int, choices=[0, 1], default=0, help="llama only")
    ap.add_argument("--norm-eps", type=float, default=1e-5, help="llama only")
    ap.add_argument("--rope-theta", type=float, default=10000.0, help="llama only")
    ap.add_argument("--omp-wait", choices=["passive", "active", "env"], default="passive",
                    help="OMP_WAIT_POLICY for torch's OpenMP pool (env: leave as is)")
    for k, v in [("vocab", 256), ("seq-len", 256), ("d-model", 384), ("n-head", 6),
                 ("n-layer", 6), ("d-ff", 0), ("batch", 8), ("steps", 10), ("warmup", 2),
                 ("seed", 0)]:
        ap.add_argument("--" + k, type=int, default=v)
    a = ap.parse_args()
    if a.omp_wait != "env":  # read by libgomp when torch loads it, so set before the import
        os.environ["OMP_WAIT_POLICY"] = a.omp_wait.upper()
    import torch
    import gpt2_ref  # needs torch; path set above
    import llama_ref

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.backends.mkldnn.enabled = a.mkldnn == "on"
    torch.manual_seed(a.seed)
    torch.ones(64, 64) @ torch.ones(64, 64)  # make sure BLAS is loaded and initialised
    lib = blas_lib()
    blas_threads = a.blas_threads or a.threads
    if lib is not None and hasattr(lib, "openblas_set_num_threads"):
        lib.openblas_set_num_threads(blas_threads)
        blas_threads = lib.openblas_get_num_threads()
    else:
        blas_threads = None

    if a.block == "llama":
        # d_ff 0: LLaMA's ceil(8d/3) rounded up to a multiple of 64, as sprout's default
        d_ff = a.d_ff or ((8 * a.d_model + 2) // 3 + 63) // 64 * 64
        cfg = llama_ref.LlamaConfig(a.vocab, a.d_model, d_ff, a.n_layer, a.n_head,
                                    max_position_embeddings=a.seq_len, rms_norm_eps=a.norm_eps,
                                    rope_theta=a.rope_theta, tie_word_embeddings=bool(a.tie_head))
        model = llama_ref.init_weights(llama_ref.LlamaForCausalLM(cfg), a.seed).float()
    else:
        cfg = gpt2_ref.Config(a.vocab, a.seq_len, a.d_model, a.n_head, a.n_layer, a.d_ff)
        model = gpt2_ref.init_weights(gpt2_ref.GPT2(cfg), a.seed).float()
    opt = gpt2_ref.make_optimizer(model, 3e-4, 0.9, 0.95, 1e-8, 0.1)
    B, T = a.batch, a.seq_len
    times = []
    for i in range(a.warmup + a.steps):
        x = torch.randint(a.vocab, (B, T))
        y = torch.randint(a.vocab, (B, T))
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            gpt2_ref.train_step(model, opt, x, y, 1.0)
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(json.dumps({
        "impl": "pytorch", "block": a.block, "threads": a.threads, "blas_threads": blas_threads,
        "mkldnn": a.mkldnn, "precision": a.precision, "omp_wait": os.environ.get("OMP_WAIT_POLICY", "default"),
        "tok_per_s": round(B * T / med, 1),
        "ms_per_step": round(med * 1e3, 2), "ms_per_step_min": round(min(times) * 1e3, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "openblas_core": openblas_core(lib), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
