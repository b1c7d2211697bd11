"""Check sprout's LLaMA / BERT kernels against the PyTorch references, and the references
against Hugging Face's conventions.

The dump (tests/kernels2_dump.c, layout in its header) holds each kernel's float32 inputs and
sprout's outputs and gradients. Each is recomputed here from the same inputs in float64 with the
reference code (llama_ref.py: LlamaRMSNorm, LlamaRotaryEmbedding + apply_rotary_pos_emb on HF's
q/k head views of the fused qkv, swiglu, causal_attention; bert_ref.py: nn.LayerNorm at BERT's
eps, gelu, self_attention, mlm_loss, mlm_mask), the gradients by autograd with sprout's output
gradient, and compared as rel = max|sprout - torch| / max|torch| <= 1e-5; the masking must match
bit for bit. Two whole layers built from the kernels (llama_block, bert_block) are checked the
same way against LlamaDecoderLayer and BertLayer loaded with the dump's weights through
LLAMA_MAP / BERT_MAP (sprout's [in, out] tensors -> HF's parameters). Then the references themselves: state-dict keys exactly HF's, tied weights, LLaMA
causal, BERT bidirectional, the MLM loss over labels != ignore_index.

usage: check_kernels2.py DUMP.h5
exit:  0 all agree, 1 some disagree, 2 bad input (one line naming the file and dataset)
"""
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_ref  # noqa: E402
import llama_ref  # noqa: E402

TOL = 1e-5
D = torch.float64


class BadInput(Exception):
    pass


class Case:
    """One dump group: its datasets as float64 tensors (ints as int64), its attributes."""

    def __init__(self, f, name):
        if name not in f:
            raise BadInput(f"/{name}: missing")
        self.name, self.g = name, f[name]

    def t(self, key, grad=False):
        if key not in self.g:
            raise BadInput(f"/{self.name}/{key}: missing")
        a = self.g[key][()]
        x = torch.from_numpy(a.astype(np.int64) if a.dtype.kind in "iu" else a.astype(np.float64))
        return x.requires_grad_(grad)

    def attr(self, key):
        if key not in self.g.attrs:
            raise BadInput(f"/{self.name} attribute {key}: missing")
        return self.g.attrs[key][0]


def rel(a, b):
    a, b = a.detach().double(), b.detach().double()
    return (a - b).abs().max().item() / max(b.abs().max().item(), 1e-30)


class Report:
    def __init__(self):
        self.failed = 0

    def check(self, what, e, tol=TOL):
        ok = e <= tol
        self.failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}: {e:.2e} (tol {tol:.0e})")

    def true(self, what, ok):
        self.failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}")


def heads(x, NH):
    """[B, T, C] -> HF's per-head view [B, NH, T, hd]."""
    B, T, C = x.shape
    return x.view(B, T, NH, C // NH).transpose(1, 2)


def merge(x):
    """[B, NH, T, hd] -> [B, T, C]."""
    B, NH, T, hd = x.shape
    return x.transpose(1, 2).reshape(B, T, NH * hd)


def check_rmsnorm(r, c):
    x, w, dy = c.t("x", True), c.t("w"), c.t("dy")
    m = llama_ref.LlamaRMSNorm(w.shape[0], eps=float(c.attr("eps"))).double()
    with torch.no_grad():
        m.weight.copy_(w)
    y = m(x)
    y.backward(dy)
    r.check("rmsnorm y", rel(c.t("y"), y))
    r.check("rmsnorm dx", rel(c.t("dx"), x.grad))
    r.check("rmsnorm dw", rel(c.t("dw"), m.weight.grad))


def check_layernorm(r, c):
    x, dy = c.t("x", True), c.t("dy")
    m = nn.LayerNorm(x.shape[1], eps=float(c.attr("eps"))).double()  # bert_ref's LayerNorm
    with torch.no_grad():
        m.weight.copy_(c.t("w"))
        m.bias.copy_(c.t("b"))
    y = m(x)
    y.backward(dy)
    r.check(f"layernorm eps {float(c.attr('eps')):.0e} y", rel(c.t("y"), y))
    r.check("layernorm dx", rel(c.t("dx"), x.grad))
    r.check("layernorm dw", rel(c.t("dw"), m.weight.grad))
    r.check("layernorm db", rel(c.t("db"), m.bias.grad))


def check_rope(r, c):
    qkv, dy, NH = c.t("qkv", True), c.t("dy"), int(c.attr("NH"))
    B, T, C3 = qkv.shape
    C = C3 // 3
    hd = C // NH
    q, k, v = qkv.split(C, dim=2)
    rot = llama_ref.LlamaRotaryEmbedding(hd, base=float(c.attr("theta")))
    pos = torch.arange(T)[None].expand(B, T)
    cos, sin = rot(qkv, pos)
    qr, kr = llama_ref.apply_rotary_pos_emb(heads(q, NH), heads(k, NH), cos, sin)
    y = torch.cat([merge(qr), merge(kr), v], dim=2)
    y.backward(dy)
    tab = c.t("tab")
    r.check("rope table cos", rel(tab[:, : hd // 2], cos[0, :, : hd // 2]))
    r.check("rope table sin", rel(tab[:, hd // 2:], sin[0, :, : hd // 2]))
    r.check("rope y (q, k rotated, v kept)", rel(c.t("y"), y))
    r.check("rope dx", rel(c.t("dx"), qkv.grad))


def check_swiglu(r, c):
    ab, dh = c.t("ab", True), c.t("dh")
    a, b = ab.chunk(2, dim=1)
    h = llama_ref.swiglu(a, b)
    h.backward(dh)
    r.check("swiglu h", rel(c.t("h"), h))
    r.check("swiglu dab", rel(c.t("dab"), ab.grad))


def check_gelu_erf(r, c):
    x = c.t("x", True)
    y = bert_ref.gelu(x)
    y.backward(c.t("dy"))
    r.check("gelu_erf y", rel(c.t("y"), y))
    r.check("gelu_erf dx", rel(c.t("dx"), x.grad))


def check_attention(r, c):
    qkv, dy, NH, causal = c.t("qkv", True), c.t("dy"), int(c.attr("NH")), int(c.attr("causal"))
    q, k, v = (heads(t, NH) for t in qkv.split(qkv.shape[2] // 3, dim=2))
    if causal:
        y, att = llama_ref.causal_attention(q, k, v)
    else:
        y, att = bert_ref.self_attention(q, k, v)
    y = merge(y)
    y.backward(dy)
    kind = "causal" if causal else "bidirectional"
    r.check(f"{kind} attention y", rel(c.t("y"), y))
    r.check(f"{kind} attention probabilities", rel(c.t("att"), att))
    r.check(f"{kind} attention dqkv", rel(c.t("dx"), qkv.grad))


def check_mlm_loss(r, c):
    logits, tg, norm = c.t("logits", True), c.t("targets"), float(c.attr("norm"))
    loss = bert_ref.mlm_loss(logits, tg, ignore_index=-1, norm=norm)
    loss.backward()
    losses = nn.functional.cross_entropy(logits.detach(), tg, ignore_index=-1, reduction="none")
    r.check(f"mlm loss ({int((tg >= 0).sum())} of {tg.shape[0]} rows, norm {norm:g})",
            rel(c.t("loss")[0], loss))
    r.check("mlm per-row losses", rel(c.t("losses"), losses))
    r.check("mlm dlogits", rel(c.t("dlogits"), logits.grad))
    r.true("mlm ignored rows have zero gradient",
           bool((c.t("dlogits")[tg < 0] == 0).all()))


def check_mlm_mask(r, c):
    tok, seed, step, n = c.t("tokens"), int(c.attr("seed")), int(c.attr("step")), \
        int(c.attr("n_normal"))
    inp, tgt = c.t("inputs"), c.t("targets")
    same = True
    for kk in range(tok.shape[0]):
        ri, rt = bert_ref.mlm_mask(seed, step, kk, tok[kk].numpy(), n)
        same &= bool((inp[kk] == torch.from_numpy(ri)).all() and
                     (tgt[kk] == torch.from_numpy(rt)).all())
    sel = int((tgt >= 0).sum())
    r.true(f"mlm masking: {tok.shape[0]} sequences ({sel} of {tok.numel()} positions selected) "
           "equal the Python restatement bit for bit", same and sel > 0)


# sprout's block tensors ([in, out], flat) -> the HF parameters of one layer: (sprout name, rows
# (0 for a vector), HF names its columns split into, in order)
LLAMA_MAP = [("ln1_w", 0, ["input_layernorm.weight"]),
             ("Wqkv", "C", ["self_attn.q_proj.weight", "self_attn.k_proj.weight",
                            "self_attn.v_proj.weight"]),
             ("Wo", "C", ["self_attn.o_proj.weight"]),
             ("ln2_w", 0, ["post_attention_layernorm.weight"]),
             ("Wgu", "C", ["mlp.gate_proj.weight", "mlp.up_proj.weight"]),
             ("Wd", "F", ["mlp.down_proj.weight"])]
BERT_MAP = [("Wqkv", "C", ["attention.self.query.weight", "attention.self.key.weight",
                           "attention.self.value.weight"]),
            ("bqkv", 0, ["attention.self.query.bias", "attention.self.key.bias",
                         "attention.self.value.bias"]),
            ("Wo", "C", ["attention.output.dense.weight"]),
            ("bo", 0, ["attention.output.dense.bias"]),
            ("ln1_w", 0, ["attention.output.LayerNorm.weight"]),
            ("ln1_b", 0, ["attention.output.LayerNorm.bias"]),
            ("Wfc", "C", ["intermediate.dense.weight"]), ("bfc", 0, ["intermediate.dense.bias"]),
            ("Wpr", "F", ["output.dense.weight"]), ("bpr", 0, ["output.dense.bias"]),
            ("ln2_w", 0, ["output.LayerNorm.weight"]), ("ln2_b", 0, ["output.LayerNorm.bias"])]


def hf_view(flat, rows, n):
    """sprout's flat [in, out] tensor as n HF tensors ([out, in] weights, split by columns)."""
    if not rows:
        return flat.chunk(n)
    return [w.t() for w in flat.reshape(rows, -1).chunk(n, dim=1)]


def check_block(r, c, layer, tmap, dims, run):
    """One layer loaded with the dump's weights, run on x with output gradient dy: y, dx and
    every weight gradient (mapped back to sprout's layout) against the dump."""
    params = dict(layer.named_parameters())
    with torch.no_grad():
        for name, rows, hf in tmap:
            for n, v in zip(hf, hf_view(c.t(name), dims.get(rows, 0), len(hf))):
                params[n].copy_(v)
    x = c.t("x", True)
    y = run(layer, x)
    y.backward(c.t("dy"))
    r.check(f"{c.name} y", rel(c.t("y"), y))
    r.check(f"{c.name} dx", rel(c.t("dx"), x.grad))
    worst, wname = 0.0, ""
    for name, rows, hf in tmap:
        g = [params[n].grad for n in hf]
        g = torch.cat(g) if not rows else torch.cat([t.t() for t in g], dim=1).reshape(-1)
        e = rel(c.t("d" + name), g)
        worst, wname = (e, name) if e > worst else (worst, wname)
    r.check(f"{c.name} weight gradients (worst {wname})", worst)


def check_llama_block(r, c):
    x = c.t("x")
    B, T, C = x.shape
    NH, F = int(c.attr("NH")), int(c.attr("F"))
    cfg = llama_ref.LlamaConfig(vocab_size=1, hidden_size=C, intermediate_size=F,
                                num_hidden_layers=1, num_attention_heads=NH,
                                rms_norm_eps=float(c.attr("eps")), rope_theta=float(c.attr("theta")))
    rot = llama_ref.LlamaRotaryEmbedding(C // NH, base=cfg.rope_theta)
    cos, sin = rot(x, torch.arange(T)[None].expand(B, T))
    check_block(r, c, llama_ref.LlamaDecoderLayer(cfg).double(), LLAMA_MAP, {"C": C, "F": F},
                lambda m, xx: m(xx, cos, sin))


def check_bert_block(r, c):
    C = c.t("x").shape[2]
    NH, F = int(c.attr("NH")), int(c.attr("F"))
    cfg = bert_ref.BertConfig(vocab_size=1, hidden_size=C, num_hidden_layers=1,
                              num_attention_heads=NH, intermediate_size=F,
                              layer_norm_eps=float(c.attr("eps")))
    check_block(r, c, bert_ref.BertLayer(cfg).double(), BERT_MAP, {"C": C, "F": F},
                lambda m, xx: m(xx))


def check_refs(r):
    """The references' own contract: HF's keys, ties, causality and its absence."""
    torch.manual_seed(0)
    for tie in (False, True):
        cfg = llama_ref.LlamaConfig(vocab_size=37, hidden_size=16, intermediate_size=24,
                                    num_hidden_layers=2, num_attention_heads=2,
                                    tie_word_embeddings=tie)
        m = llama_ref.init_weights(llama_ref.LlamaForCausalLM(cfg).double())
        r.true(f"llama_ref state-dict keys are HF's (tie {tie})",
               list(m.state_dict().keys()) == llama_ref.hf_names(cfg))
        r.true(f"llama_ref lm_head tied to embed_tokens: {tie}",
               (m.lm_head.weight is m.model.embed_tokens.weight) == tie)
    ids = torch.randint(0, 37, (2, 9))
    ids2 = ids.clone()
    ids2[:, 5:] = (ids2[:, 5:] + 1) % 37
    with torch.no_grad():
        a, b = m(ids), m(ids2)
    r.true("llama_ref is causal: later tokens leave earlier logits unchanged",
           rel(a[:, :5], b[:, :5]) <= 1e-12 and rel(a[:, 5:], b[:, 5:]) > 1e-6)

    cfg = bert_ref.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=24,
                              max_position_embeddings=16)
    m = bert_ref.init_weights(bert_ref.BertForMaskedLM(cfg).double())
    p = m.cls.predictions
    r.true("bert_ref state-dict keys are HF's", list(m.state_dict().keys()) == bert_ref.hf_names(cfg))
    r.true("bert_ref decoder tied to word_embeddings, decoder bias is cls.predictions.bias",
           p.decoder.weight is m.bert.embeddings.word_embeddings.weight and p.decoder.bias is p.bias)
    ids = torch.randint(0, 36, (2, 9))
    ids2 = ids.clone()
    ids2[:, 7] = (ids2[:, 7] + 1) % 36
    labels = torch.full_like(ids, -100)
    labels[:, 3] = ids[:, 3]
    with torch.no_grad():
        la, loss = m(ids, labels)
        lb = m(ids2)
        lsum = m(ids, labels, norm=4.0)[1]
        lpad = m(ids, attention_mask=(torch.arange(9) < 7).long()[None].expand(2, 9))
        lcut = m(ids[:, :7])
    r.true("bert_ref is bidirectional: a later token changes earlier logits",
           rel(la[:, :7], lb[:, :7]) > 1e-6)
    r.true("bert_ref padding mask: padded positions do not reach the others",
           rel(lpad[:, :7], m.cls(m.bert(ids[:, :7]))) <= 1e-12 and lcut.shape[1] == 7)
    ce = nn.functional.cross_entropy(la[:, 3], ids[:, 3])
    r.true("bert_ref loss: mean over labelled positions only, or their sum / norm",
           abs(loss.item() - ce.item()) <= 1e-12 and abs(lsum.item() - 2 * ce.item() / 4) <= 1e-12)


CHECKS = [("rmsnorm", check_rmsnorm), ("layernorm", check_layernorm), ("rope", check_rope),
          ("swiglu", check_swiglu), ("gelu_erf", check_gelu_erf), ("attn_bidir", check_attention),
          ("attn_causal", check_attention), ("mlm_loss", check_mlm_loss),
          ("mlm_mask", check_mlm_mask), ("llama_block", check_llama_block),
          ("bert_block", check_bert_block)]


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    path = sys.argv[1]
    r = Report()
    try:
        with h5py.File(path, "r") as f:
            for name, fn in CHECKS:
                fn(r, Case(f, name))
    except (OSError, BadInput) as e:
        print(f"{path}: {e}", file=sys.stderr)
        return 2
    check_refs(r)
    print(f"check_kernels2: {r.failed} failed")
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
