"""Reference BERT (BertForMaskedLM) in plain PyTorch, to Hugging Face's semantics and names,
and sprout's masked-LM masking restated independently (Philox included).

No transformers package: the modules below restate transformers' modeling_bert.py for the
configuration sprout builds (absolute positions, no dropout, no pooler, as BertForMaskedLM has),
with the same module and parameter names, so that model.state_dict() has exactly HF's keys
("bert.embeddings.word_embeddings.weight", "bert.encoder.layer.0.attention.self.query.weight",
..., "cls.predictions.decoder.weight") and a HF checkpoint loads into it one-to-one. nn.Linear
weights are HF's [out, in] (sprout stores [in, out]).

Spec: embeddings = LayerNorm(word + position + token_type) with one token type (id 0);
post-LN layers x = LayerNorm(x + attention.output.dense(self_attn(x))),
x = LayerNorm(x + output.dense(gelu(intermediate.dense(x)))); bidirectional attention, scale
1/sqrt(hd), an optional padding mask (attention_mask 0 = padding, HF's additive finfo.min);
GELU is the exact erf form (HF hidden_act "gelu"; sprout's sp_gelu_* is the tanh approximation,
sp_gelu_erf_* this one); LayerNorm eps layer_norm_eps (HF 1e-12; sprout's LayerNorm kernel is
fixed at 1e-5 unless called through sp_layernorm_forward_eps); the MLM head
cls.predictions.{transform.{dense, gelu, LayerNorm}, decoder (weight tied to word_embeddings,
bias = cls.predictions.bias)}. The loss is the cross-entropy over positions whose label is not
ignore_index (HF's -100; sprout uses -1), averaged over them (HF) or summed and divided by a
caller's normaliser `norm` (sprout's sp_mlm_loss_forward). Float64-capable (model.double()).
"""
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class BertConfig:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 1
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} not divisible by "
                             f"num_attention_heads {self.num_attention_heads}")


def gelu(x):
    """HF ACT2FN["gelu"]: the exact form 0.5 x (1 + erf(x / sqrt 2))."""
    return F.gelu(x)


def self_attention(q, k, v, attention_mask=None):
    """BertSelfAttention's core: softmax(q k^T / sqrt(hd) + padding mask) v and the
    probabilities; q, k, v [B, NH, T, hd], attention_mask [B, T] (1 attend, 0 padding) or None:
    every position sees every other (bidirectional)."""
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    if attention_mask is not None:
        m = (1.0 - attention_mask[:, None, None, :].to(q.dtype)) * torch.finfo(q.dtype).min
        scores = scores + m
    probs = scores.softmax(dim=-1)
    return probs @ v, probs


def mlm_loss(logits, labels, ignore_index=-100, norm=None):
    """Cross-entropy over the positions whose label is not ignore_index: their mean (HF) when
    norm is None, else their sum / norm (sprout). logits [..., V], labels [...]."""
    flat, lab = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
    if norm is None:
        return F.cross_entropy(flat, lab, ignore_index=ignore_index)
    return F.cross_entropy(flat, lab, ignore_index=ignore_index, reduction="sum") / norm


class BertEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, input_ids, token_type_ids=None):
        T = input_ids.shape[1]
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        pos = torch.arange(T, device=input_ids.device)[None]
        x = (self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
             + self.position_embeddings(pos))
        return self.LayerNorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg.hidden_size
        self.num_attention_heads = cfg.num_attention_heads
        self.attention_head_size = C // cfg.num_attention_heads
        self.query = nn.Linear(C, C)
        self.key = nn.Linear(C, C)
        self.value = nn.Linear(C, C)

    def forward(self, x, attention_mask=None):
        B, T, C = x.shape
        q, k, v = (p(x).view(B, T, self.num_attention_heads, self.attention_head_size)
                   .transpose(1, 2) for p in (self.query, self.key, self.value))
        y, _ = self_attention(q, k, v, attention_mask)
        return y.transpose(1, 2).reshape(B, T, C)


class BertAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = BertOutput(cfg, cfg.hidden_size)  # HF's BertSelfOutput

    def forward(self, x, attention_mask=None):
        return self.output(self.self(x, attention_mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x):
        return gelu(self.dense(x))


class BertOutput(nn.Module):
    """LayerNorm(dense(hidden_states) + input_tensor): HF's BertOutput (n_in = intermediate_size)
    and BertSelfOutput (n_in = hidden_size), two classes of the same form in HF."""

    def __init__(self, cfg, n_in):
        super().__init__()
        self.dense = nn.Linear(n_in, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, hidden_states, input_tensor):
        return self.LayerNorm(self.dense(hidden_states) + input_tensor)


class BertLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertOutput(cfg, cfg.intermediate_size)

    def forward(self, x, attention_mask=None):
        a = self.attention(x, attention_mask)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(cfg) for _ in range(cfg.num_hidden_layers))

    def forward(self, x, attention_mask=None):
        for layer in self.layer:
            x = layer(x, attention_mask)
        return x


class BertModel(nn.Module):
    """BertForMaskedLM's BertModel(add_pooling_layer=False)."""

    def __init__(self, cfg):
        super().__init__()
        self.embeddings = BertEmbeddings(cfg)
        self.encoder = BertEncoder(cfg)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        return self.encoder(self.embeddings(input_ids, token_type_ids), attention_mask)


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x):
        return self.LayerNorm(gelu(self.dense(x)))


class BertLMPredictionHead(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.transform = BertPredictionHeadTransform(cfg)
        self.decoder = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        self.decoder.bias = self.bias

    def forward(self, x):
        return self.decoder(self.transform(x))


class BertOnlyMLMHead(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.predictions = BertLMPredictionHead(cfg)

    def forward(self, x):
        return self.predictions(x)


class BertForMaskedLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.bert = BertModel(cfg)
        self.cls = BertOnlyMLMHead(cfg)
        # tie_word_embeddings (HF's default for BERT)
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def forward(self, input_ids, labels=None, attention_mask=None, token_type_ids=None,
                ignore_index=-100, norm=None):
        """input_ids [B,T] -> logits [B,T,V]; with labels [B,T] also the loss over the labels
        that are not ignore_index: their mean, or their sum / norm when norm is given."""
        logits = self.cls(self.bert(input_ids, attention_mask, token_type_ids))
        if labels is None:
            return logits
        return logits, mlm_loss(logits, labels, ignore_index, norm)


def hf_names(cfg):
    """The state-dict keys of BertForMaskedLM with this config, in HF's order (the tied
    decoder weight and bias are keys of their own, as in HF)."""
    per_layer = ["attention.self.query.weight", "attention.self.query.bias",
                 "attention.self.key.weight", "attention.self.key.bias",
                 "attention.self.value.weight", "attention.self.value.bias",
                 "attention.output.dense.weight", "attention.output.dense.bias",
                 "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
                 "intermediate.dense.weight", "intermediate.dense.bias",
                 "output.dense.weight", "output.dense.bias",
                 "output.LayerNorm.weight", "output.LayerNorm.bias"]
    names = [f"bert.embeddings.{n}" for n in
             ["word_embeddings.weight", "position_embeddings.weight",
              "token_type_embeddings.weight", "LayerNorm.weight", "LayerNorm.bias"]]
    for i in range(cfg.num_hidden_layers):
        names += [f"bert.encoder.layer.{i}.{n}" for n in per_layer]
    return names + ["cls.predictions.bias", "cls.predictions.transform.dense.weight",
                    "cls.predictions.transform.dense.bias",
                    "cls.predictions.transform.LayerNorm.weight",
                    "cls.predictions.transform.LayerNorm.bias",
                    "cls.predictions.decoder.weight", "cls.predictions.decoder.bias"]


def init_weights(model, seed=0):
    """HF's _init_weights: Linear and Embedding N(0, initializer_range), biases 0, LayerNorm 1/0."""
    g = torch.Generator().manual_seed(seed)
    std = model.config.initializer_range
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".LayerNorm." in name:
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * std)
    return model


# ---- sprout's masking (include/sprout/mlm.h), restated ------------------------------------------

MLM_MASK, MLM_CLS, MLM_SEP, MLM_PAD, MLM_NSPECIAL = 0, 1, 2, 3, 4
RNG_MLM = 8
M32 = np.uint64(0xFFFFFFFF)


def philox4x32(seed, purpose, a, b):
    """Philox4x32-10 at key (seed, purpose), counters (a, b) (uint64 arrays): four uint32 words,
    as sp_rng4 (src/core/rng.c)."""
    a, b = np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64)
    k0 = np.uint64(seed & 0xFFFFFFFF)
    k1 = np.uint64(((seed >> 32) ^ ((purpose * 0x85EBCA6B) & 0xFFFFFFFF)) & 0xFFFFFFFF)
    c0, c1, c2, c3 = b & M32, b >> np.uint64(32), a & M32, a >> np.uint64(32)
    for _ in range(10):
        p0 = np.uint64(0xD2511F53) * c0
        p1 = np.uint64(0xCD9E8D57) * c2
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & M32,
                          (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & M32)
        k0 = (k0 + np.uint64(0x9E3779B9)) & M32
        k1 = (k1 + np.uint64(0xBB67AE85)) & M32
    return c0, c1, c2, c3


def mlm_mask(seed, step, k, tokens, n_normal):
    """HF DataCollatorForLanguageModeling.torch_mask_tokens (mlm_probability 0.15, 80% [MASK],
    10% random, 10% kept; special tokens never selected) with sprout's draws: position t of
    sample k of step `step` uses philox(seed, RNG_MLM, step, (k << 32) | t), word 0 for the
    selection, 1 for the branch, 2 for the random token. tokens [T] -> (inputs, labels) with
    label -1 where not selected; [MASK] is n_normal + MLM_MASK."""
    tok = np.asarray(tokens, dtype=np.int64)
    t = np.arange(tok.shape[0], dtype=np.uint64)
    w0, w1, w2, _ = philox4x32(seed, RNG_MLM, np.full_like(t, step),
                               (np.uint64(k) << np.uint64(32)) | t)
    u_sel, u_branch = w0 / 2.0**32, w1 / 2.0**32
    selected = (u_sel < 0.15) & (tok >= 0) & (tok < n_normal)
    labels = np.where(selected, tok, -1)
    replaced = selected & (u_branch < 0.8)
    randomised = selected & (u_branch >= 0.8) & (u_branch < 0.9)
    random_words = ((w2 * np.uint64(n_normal)) >> np.uint64(32)).astype(np.int64)
    inputs = np.where(replaced, n_normal + MLM_MASK, np.where(randomised, random_words, tok))
    return inputs, labels
