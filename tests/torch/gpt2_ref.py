"""Reference GPT-2 in plain PyTorch, written to sprout's spec, for parity tests and benchmarks.

sprout (C) claims to compute exactly this model; tests/torch/check_parity.py holds it to that
claim and jobs/bench/torch_gpt.py times it. Parameters are named with the Hugging Face GPT-2
tensor names ("transformer.h.0.attn.c_attn.weight", ...), so model.named_parameters() lines up
one-to-one with the datasets of an HDF5 dump or checkpoint.

Spec: pre-LN blocks x += attn(ln_1(x)); x += mlp(ln_2(x)); causal multi-head attention with a
fused c_attn (Conv1D layout y = x @ W + b, W [C,3C], q|k|v = channel thirds, head h = channels
h*hd..h*hd+hd-1 of each), scale 1/sqrt(hd); MLP c_fc -> tanh-GELU -> c_proj; LayerNorm eps 1e-5;
learned positions; final ln_f; head tied to wte; no dropout; loss = mean cross-entropy over B*T.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

LN_EPS = 1e-5


@dataclass
class Config:
    vocab: int
    seq_len: int
    d_model: int
    n_head: int
    n_layer: int
    d_ff: int = 0  # 0 -> 4 * d_model

    def __post_init__(self):
        if self.d_ff == 0:
            self.d_ff = 4 * self.d_model
        if self.d_model % self.n_head:
            raise ValueError(f"d_model {self.d_model} not divisible by n_head {self.n_head}")


class Conv1D(nn.Module):
    """HF GPT-2 linear layer: weight stored [in, out], y = x @ W + b."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(
            *x.shape[:-1], -1)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = Conv1D(cfg.d_model, 3 * cfg.d_model)
        self.c_proj = Conv1D(cfg.d_model, cfg.d_model)

    def forward(self, x):
        B, T, C = x.shape
        hd = C // self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, hd).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        att = att.masked_fill(mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.c_fc = Conv1D(cfg.d_model, cfg.d_ff)
        self.c_proj = Conv1D(cfg.d_ff, cfg.d_model)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.d_model, eps=LN_EPS)
        self.attn = Attention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.d_model, eps=LN_EPS)
        self.mlp = MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.transformer = nn.Module()
        self.transformer.wte = nn.Embedding(cfg.vocab, cfg.d_model)
        self.transformer.wpe = nn.Embedding(cfg.seq_len, cfg.d_model)
        self.transformer.h = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.transformer.ln_f = nn.LayerNorm(cfg.d_model, eps=LN_EPS)

    def forward(self, idx, targets=None):
        """idx [B,T] int -> logits [B,T,V]; with targets also the mean cross-entropy."""
        t = self.transformer
        T = idx.shape[1]
        x = t.wte(idx) + t.wpe(torch.arange(T, device=idx.device))
        for block in t.h:
            x = block(x)
        logits = t.ln_f(x) @ t.wte.weight.t()
        if targets is None:
            return logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss


def hf_names(cfg):
    """The HF tensor names of a model with this config, in sprout's order."""
    per_block = ["ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
                 "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
                 "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"]
    names = ["transformer.wte.weight", "transformer.wpe.weight"]
    for i in range(cfg.n_layer):
        names += [f"transformer.h.{i}.{n}" for n in per_block]
    return names + ["transformer.ln_f.weight", "transformer.ln_f.bias"]


def init_weights(model, seed=0):
    """GPT-2 init: N(0, 0.02), residual projections / sqrt(2 n_layer), biases 0, LN gains 1."""
    g = torch.Generator().manual_seed(seed)
    std_res = 0.02 / math.sqrt(2 * model.cfg.n_layer)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif ".ln_" in name or name.startswith("transformer.ln_f"):
                p.fill_(1.0)
            else:
                std = std_res if name.endswith("c_proj.weight") else 0.02
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * std)
    return model


def load_group(model, group):
    """Copy every parameter from an h5py group of HF-named datasets; raises KeyError/ValueError
    naming the dataset when one is missing or has the wrong shape."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name not in group:
                raise KeyError(f"{group.name}/{name}: missing")
            a = group[name][()]
            if tuple(a.shape) != tuple(p.shape):
                raise ValueError(f"{group.name}/{name}: shape {a.shape}, expected {tuple(p.shape)}")
            p.copy_(torch.from_numpy(a))
    return model


def param_groups(model, weight_decay):
    """AdamW groups: decay on the 2-D tensors (embeddings, matmul weights), none on LN and biases."""
    params = list(model.named_parameters())
    return [{"params": [p for _, p in params if p.dim() == 2], "weight_decay": weight_decay},
            {"params": [p for _, p in params if p.dim() < 2], "weight_decay": 0.0}]


def make_optimizer(model, lr, beta1, beta2, eps, weight_decay):
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=(beta1, beta2),
                             eps=eps, weight_decay=weight_decay)


def train_step(model, opt, inputs, targets, grad_clip):
    """One step: forward, backward, clip (if grad_clip > 0), AdamW. Returns the loss before it."""
    opt.zero_grad(set_to_none=True)
    _, loss = model(inputs, targets)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    return loss.item()


def run_training(model, hp, inputs, targets):
    """S steps with constant lr from hp (dict of lr, beta1, beta2, eps, weight_decay, grad_clip);
    inputs/targets [S,B,T]. Returns the S losses, each computed before its update."""
    opt = make_optimizer(model, hp["lr"], hp["beta1"], hp["beta2"], hp["eps"], hp["weight_decay"])
    return [train_step(model, opt, inputs[s], targets[s], hp["grad_clip"])
            for s in range(inputs.shape[0])]


def grads_at(model, inputs, targets):
    """logits, loss and {HF name: gradient} of the mean loss at the model's current weights."""
    model.zero_grad(set_to_none=True)
    logits, loss = model(inputs, targets)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    return logits.detach(), loss.detach(), grads
