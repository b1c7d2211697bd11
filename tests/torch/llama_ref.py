"""Reference LLaMA (LlamaForCausalLM) in plain PyTorch, to Hugging Face's semantics and names.

No transformers package: the modules below restate transformers' modeling_llama.py for the
configuration sprout builds (every head its own k/v head, no biases, no dropout), with the same
module and parameter names, so that model.state_dict() has exactly HF's keys
("model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", ...) and a HF checkpoint
loads into it one-to-one. nn.Linear weights are HF's [out, in] (sprout stores [in, out]).

Spec: pre-norm blocks x += self_attn(input_layernorm(x)); x += mlp(post_attention_layernorm(x));
RMSNorm (eps rms_norm_eps, no bias, no mean); causal attention, scale 1/sqrt(hd), rotary position
embedding on q and k with HF's rotate_half (channel i of a head paired with i + hd/2,
inv_freq_i = rope_theta^(-2i/hd), position = index in the sequence); SwiGLU MLP
down_proj(silu(gate_proj(x)) * up_proj(x)); final norm; lm_head, tied to embed_tokens when
tie_word_embeddings. The loss is the mean cross-entropy of logits against `targets`, the next
tokens (HF's `labels` are the inputs themselves, shifted inside the model: targets =
labels[:, 1:]); targets equal to ignore_index (-100, HF's) do not count.

One deliberate difference: the rotary angles t * inv_freq are computed in float64 and then cast,
where HF computes them in float32 (an angle error up to ~t ulp, 3e-5 rad at t = 512); sprout's
table (sp_rope_table) is the float64 one too. Everything else runs in the parameters' dtype, so
the model is float64-capable (model.double()).
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class LlamaConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    max_position_embeddings: int = 2048
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = False
    initializer_range: float = 0.02

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} not divisible by "
                             f"num_attention_heads {self.num_attention_heads}")
        if (self.hidden_size // self.num_attention_heads) % 2:
            raise ValueError("the head dimension must be even for rotary embeddings")


class LlamaRMSNorm(nn.Module):
    def __init__(self, hidden_size, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        # HF upcasts half precision to float32; float64 stays float64
        dtype = hidden_states.dtype
        h = hidden_states.to(torch.float64 if dtype == torch.float64 else torch.float32)
        variance = h.pow(2).mean(-1, keepdim=True)
        h = h * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * h.to(dtype)


class LlamaRotaryEmbedding(nn.Module):
    def __init__(self, dim, base=10000.0):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(torch.float64)
                                   / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    @torch.no_grad()
    def forward(self, x, position_ids):
        """cos, sin [B, T, dim] in x's dtype for positions position_ids [B, T]."""
        freqs = position_ids[..., None].to(torch.float64) * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


def rotate_half(x):
    """Rotates half the hidden dims of the input: (x1, x2) -> (-x2, x1)."""
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1):
    """q, k [B, NH, T, hd]; cos, sin [B, T, hd]."""
    cos = cos.unsqueeze(unsqueeze_dim)
    sin = sin.unsqueeze(unsqueeze_dim)
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


def causal_attention(q, k, v, causal=True):
    """softmax(q k^T / sqrt(hd) + mask) v and the probabilities; q, k, v [B, NH, T, hd]."""
    T = q.shape[-2]
    att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    if causal:
        mask = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1)
        att = att.masked_fill(mask, float("-inf"))
    att = att.softmax(dim=-1)
    return att @ v, att


class LlamaAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg.hidden_size
        self.num_heads = cfg.num_attention_heads
        self.head_dim = C // self.num_heads
        self.q_proj = nn.Linear(C, C, bias=False)
        self.k_proj = nn.Linear(C, C, bias=False)
        self.v_proj = nn.Linear(C, C, bias=False)
        self.o_proj = nn.Linear(C, C, bias=False)

    def forward(self, x, cos, sin):
        B, T, C = x.shape
        q, k, v = (p(x).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)
                   for p in (self.q_proj, self.k_proj, self.v_proj))
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        y, _ = causal_attention(q, k, v)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, C))


def swiglu(gate, up):
    """LlamaMLP's inner product: act_fn(gate_proj(x)) * up_proj(x), act_fn = silu."""
    return F.silu(gate) * up


class LlamaMLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(swiglu(self.gate_proj(x), self.up_proj(x)))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self_attn = LlamaAttention(cfg)
        self.mlp = LlamaMLP(cfg)
        self.input_layernorm = LlamaRMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps)
        self.post_attention_layernorm = LlamaRMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(LlamaDecoderLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = LlamaRMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps)
        self.rotary_emb = LlamaRotaryEmbedding(cfg.hidden_size // cfg.num_attention_heads,
                                               base=cfg.rope_theta)

    def forward(self, input_ids):
        x = self.embed_tokens(input_ids)
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)[None].expand_as(input_ids)
        cos, sin = self.rotary_emb(x, pos)
        for layer in self.layers:
            x = layer(x, cos, sin)
        return self.norm(x)


class LlamaForCausalLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.model = LlamaModel(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, input_ids, targets=None, ignore_index=-100):
        """input_ids [B,T] -> logits [B,T,V]; with targets [B,T] also the mean cross-entropy."""
        logits = self.lm_head(self.model(input_ids))
        if targets is None:
            return logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                               ignore_index=ignore_index)
        return logits, loss


def hf_names(cfg):
    """The state-dict keys of LlamaForCausalLM with this config, in HF's order."""
    per_layer = ["self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                 "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
                 "mlp.down_proj.weight", "input_layernorm.weight",
                 "post_attention_layernorm.weight"]
    names = ["model.embed_tokens.weight"]
    for i in range(cfg.num_hidden_layers):
        names += [f"model.layers.{i}.{n}" for n in per_layer]
    return names + ["model.norm.weight", "lm_head.weight"]


def init_weights(model, seed=0):
    """HF's _init_weights: Linear and Embedding N(0, initializer_range), RMSNorm gains 1."""
    g = torch.Generator().manual_seed(seed)
    std = model.config.initializer_range
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layernorm.weight") or name == "model.norm.weight":
                p.fill_(1.0)
            else:
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * std)
    return model
