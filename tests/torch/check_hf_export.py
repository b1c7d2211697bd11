"""Checks a `sprout export --format hf` directory against the checkpoint it came from, by the
checkpoint's block kind (/spec block: gpt2, llama or bert; KINDS below).

- config.json carries every field transformers' config class needs for this model (GPT2Config:
  gelu_new, eps 1e-5, no dropout, tied head; LlamaConfig: the spec's rms_norm_eps, rope_theta and
  tie_word_embeddings, k/v heads = heads, silu, no biases, no rope_scaling; BertConfig: erf
  gelu, one token type, absolute positions, the spec's layer_norm_eps, pad_token_id [PAD]);
- model.safetensors (read by tests/torch/safetensors_ref.py) holds exactly the HF names of
  GPT2LMHeadModel / LlamaForCausalLM / BertForMaskedLM (q_proj, k_proj, v_proj, gate_proj,
  up_proj as separate tensors) less a tied lm_head.weight (bert: cls.predictions.decoder.*), equal to the checkpoint's /model (F32: bit for bit; BF16:
  bit for bit torch's round-to-nearest-even of the fp32 weights);
- the PyTorch reference of the kind (tests/torch/refs.py: gpt2_ref.py, llama_ref.py, HF
  semantics) loaded by name from the safetensors dict gives sprout's logits on the first N
  windows of TOKENS (bert: the MLM head's on the unmasked windows, scored against the windows
  themselves): max|diff| / max|logit| <= 1e-5 (F32); the bf16 model's loss within 1% of
  sprout's fp32 loss;
- the tokenizer files: for vocab 256 they make GPT-2's byte-level BPE equal to sprout's byte
  tokenizer; for vocab 50257 they are GPT-2's (50257 ids, <|endoftext|> = 50256 as bos, eos and
  unk; the caller compares vocab.json and merges.txt with the package's files byte for byte);
  bert's vocabulary has 4 special ids past the tokenizer's.

usage: /usr/bin/python3 check_hf_export.py DIR CKPT.h5 LOGITS.bin TOKENS N
"""
import json
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import bert_ref  # noqa: E402
import gpt2_ref  # noqa: E402
from gpt2_bytes import bytes_to_unicode  # noqa: E402
import llama_ref  # noqa: E402
import refs  # noqa: E402
import safetensors_ref  # noqa: E402

# what GPT2Config reads for the architecture, and the values sprout's semantics fix
GPT2_FIELDS = ["architectures", "model_type", "vocab_size", "n_positions", "n_ctx", "n_embd",
                 "n_layer", "n_head", "n_inner", "activation_function", "layer_norm_epsilon",
                 "resid_pdrop", "embd_pdrop", "attn_pdrop", "initializer_range",
                 "scale_attn_weights", "scale_attn_by_inverse_layer_idx",
                 "reorder_and_upcast_attn", "tie_word_embeddings", "bos_token_id",
                 "eos_token_id", "torch_dtype"]
GPT2_FIXED = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
         "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "resid_pdrop": 0.0,
         "embd_pdrop": 0.0, "attn_pdrop": 0.0, "scale_attn_weights": True,
         "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False,
         "tie_word_embeddings": True}
# LlamaConfig's
LLAMA_FIELDS = ["architectures", "model_type", "vocab_size", "hidden_size", "intermediate_size",
                "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_scaling",
                "hidden_act", "attention_bias", "mlp_bias", "initializer_range",
                "tie_word_embeddings", "bos_token_id", "eos_token_id", "torch_dtype"]
LLAMA_FIXED = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
               "attention_bias": False, "mlp_bias": False, "rope_scaling": None,
               "initializer_range": 0.02}

# BertConfig's
BERT_FIELDS = ["architectures", "model_type", "vocab_size", "hidden_size", "num_hidden_layers",
               "num_attention_heads", "intermediate_size", "hidden_act", "hidden_dropout_prob",
               "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size",
               "layer_norm_eps", "position_embedding_type", "is_decoder", "add_cross_attention",
               "initializer_range", "pad_token_id", "tie_word_embeddings", "torch_dtype"]
BERT_FIXED = {"architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_act": "gelu",
              "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
              "type_vocab_size": 1, "position_embedding_type": "absolute", "is_decoder": False,
              "add_cross_attention": False, "tie_word_embeddings": True}


def gpt2_want(sp):
    return {"vocab_size": sp["vocab"], "n_positions": sp["seq_len"], "n_ctx": sp["seq_len"],
            "n_embd": sp["d_model"], "n_head": sp["n_head"], "n_inner": sp["d_ff"],
            "n_layer": sp["n_layer"]}


def gpt2_names(sp):
    return gpt2_ref.hf_names(gpt2_ref.Config(sp["vocab"], sp["seq_len"], sp["d_model"],
                                             sp["n_head"], sp["n_layer"], sp["d_ff"]))


def llama_want(sp):
    return {"vocab_size": sp["vocab"], "max_position_embeddings": sp["seq_len"],
            "hidden_size": sp["d_model"], "num_attention_heads": sp["n_head"],
            "num_key_value_heads": sp["n_head"], "intermediate_size": sp["d_ff"],
            "num_hidden_layers": sp["n_layer"], "rms_norm_eps": sp["norm_eps"],
            "rope_theta": sp["rope_theta"], "tie_word_embeddings": bool(sp["tie_head"])}


def llama_names(sp):
    names = llama_ref.hf_names(llama_ref.LlamaConfig(sp["vocab"], sp["d_model"], sp["d_ff"],
                                                     sp["n_layer"], sp["n_head"]))
    # save_pretrained leaves out a tied head (the same tensor as embed_tokens)
    return [n for n in names if not (sp["tie_head"] and n == "lm_head.weight")]


def bert_want(sp):
    # [PAD] is the last of the four special ids a masked model's vocabulary ends with
    return {"vocab_size": sp["vocab"], "max_position_embeddings": sp["seq_len"],
            "hidden_size": sp["d_model"], "num_attention_heads": sp["n_head"],
            "intermediate_size": sp["d_ff"], "num_hidden_layers": sp["n_layer"],
            "layer_norm_eps": sp["norm_eps"], "pad_token_id": sp["vocab"] - 1}


def bert_names(sp):
    names = bert_ref.hf_names(bert_ref.BertConfig(
        vocab_size=sp["vocab"], hidden_size=sp["d_model"], num_hidden_layers=sp["n_layer"],
        num_attention_heads=sp["n_head"], intermediate_size=sp["d_ff"],
        max_position_embeddings=sp["seq_len"], type_vocab_size=1))
    # save_pretrained leaves out the decoder's weight and bias (word_embeddings, predictions.bias)
    return [n for n in names if not n.startswith("cls.predictions.decoder.")]


# per block kind: config.json's fields, the fixed values, the spec's values, the tensor names
KINDS = {"gpt2": (GPT2_FIELDS, GPT2_FIXED, gpt2_want, gpt2_names),
         "llama": (LLAMA_FIELDS, LLAMA_FIXED, llama_want, llama_names),
         "bert": (BERT_FIELDS, BERT_FIXED, bert_want, bert_names)}


def check_tokenizer_config(d, seq_len, special):
    tc = json.load(open(os.path.join(d, "tokenizer_config.json")))
    assert tc["tokenizer_class"] == "GPT2Tokenizer" and tc["model_max_length"] == seq_len, tc
    for k in ("bos_token", "eos_token", "unk_token"):
        assert tc[k] == special, f"tokenizer_config.json: {k} = {tc[k]!r}, expected {special!r}"


def check_gpt2_tokenizer(d, seq_len, cfg):
    vocab = json.load(open(os.path.join(d, "vocab.json"), encoding="utf-8"))
    assert sorted(vocab.values()) == list(range(50257)), "vocab.json: ids are not 0..50256"
    assert vocab["<|endoftext|>"] == 50256
    merges = open(os.path.join(d, "merges.txt"), encoding="utf-8").read().split("\n")
    assert merges[0].startswith("#version") and len(merges) > 50000, "merges.txt"
    check_tokenizer_config(d, seq_len, "<|endoftext|>")
    assert cfg["bos_token_id"] == 50256 and cfg["eos_token_id"] == 50256, cfg


def check_tokenizer(d, seq_len, cfg, n_special):
    """n_special: the ids the kind reserves after the tokenizer's (bert: [MASK] [CLS] [SEP] [PAD],
    the model's last four, which the tokenizer files do not name)"""
    if cfg["vocab_size"] - n_special == 50257:
        return check_gpt2_tokenizer(d, seq_len, cfg)
    vocab = json.load(open(os.path.join(d, "vocab.json"), encoding="utf-8"))
    b2u = bytes_to_unicode()
    assert vocab == {b2u[b]: b for b in range(256)}, "vocab.json is not bytes_to_unicode(b) -> b"
    merges = open(os.path.join(d, "merges.txt"), encoding="utf-8").read()
    assert merges == "#version: 0.2\n", f"merges.txt: {merges!r}"
    check_tokenizer_config(d, seq_len, None)
    assert cfg["bos_token_id"] is None and cfg["eos_token_id"] is None, cfg
    # GPT2Tokenizer with no merges: each pre-token's UTF-8 bytes map through bytes_to_unicode and
    # every single character is a vocabulary entry, so token = byte whatever the pre-split
    text = "The jury said «ça va» — naïve 日本 \t\n\x00\x7f\"\\ end"
    ids = [vocab[b2u[b]] for b in text.encode("utf-8")]
    assert ids == list(text.encode("utf-8")), "the vocabulary does not give byte tokens"
    u2b = {v: k for k, v in b2u.items()}
    inv = {v: k for k, v in vocab.items()}
    assert bytes(u2b[c] for c in "".join(inv[i] for i in ids)).decode("utf-8") == text


def main():
    d, ckpt, logits_path, tokens, n = sys.argv[1:6]
    n = int(n)
    torch.set_num_threads(1)
    cfg = json.load(open(os.path.join(d, "config.json")))
    with h5py.File(ckpt, "r") as f:
        at = dict(f["spec"].attrs)
        sp = {k: int(at[k]) for k in ("vocab", "seq_len", "d_model", "n_head", "d_ff", "n_layer")}
        block = refs.block_of(at)
        if block != "gpt2":
            sp.update({k: refs.attr(at, k, float) for k in ("norm_eps", "rope_theta")},
                      tie_head=refs.attr(at, "tie_head"))
        ref = {name: f["model"][name][()] for name in f["model"]}
        model = refs.make_model(at).double()
    fields, fixed, want_of, names_of = KINDS[block]
    missing = [k for k in fields if k not in cfg]
    assert not missing, f"config.json lacks {missing}"
    for k, v in fixed.items():
        assert cfg[k] == v, f"config.json: {k} = {cfg[k]!r}, expected {v!r}"
    for k, v in want_of(sp).items():
        assert cfg[k] == v, f"config.json: {k} = {cfg[k]}, the checkpoint's spec says {v}"

    tensors, meta, hlen = safetensors_ref.read(os.path.join(d, "model.safetensors"))
    assert meta.get("format") == "pt", f"__metadata__ {meta}"
    assert hlen % 8 == 0, f"header length {hlen} is not a multiple of 8"
    names = names_of(sp)
    assert sorted(tensors) == sorted(names), \
        f"names: extra {sorted(set(tensors) - set(names))}, missing {sorted(set(names) - set(tensors))}"
    bf16 = cfg["torch_dtype"] == "bfloat16"
    assert cfg["torch_dtype"] in ("float32", "bfloat16")
    weights = {}
    for name in names:
        a, r = tensors[name], ref[name]
        assert a.shape == r.shape, f"{name}: shape {a.shape}, checkpoint {r.shape}"
        if bf16:
            assert a.dtype == np.uint16
            r32 = r.astype(np.float32)
            tiny = (r32 != 0) & (np.abs(r32) < np.finfo(np.float32).tiny)
            assert not tiny.any(), f"{name}: fp32 subnormals (sprout flushes them, torch does not)"
            rne = torch.from_numpy(r32).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
            bad = np.flatnonzero(a != rne)
            assert bad.size == 0, f"{name}: {bad.size} values are not RNE(fp32), first at {bad[0]}"
            weights[name] = safetensors_ref.bf16_to_f32(a)
        else:
            assert a.dtype == np.float32
            assert np.array_equal(a.view(np.uint32), r.astype(np.float32).view(np.uint32)), \
                f"{name}: differs from the checkpoint"
            weights[name] = a
    gpt2_ref.load_group(model, {k: v.astype(np.float64) for k, v in weights.items()})

    raw = open(tokens, "rb").read()
    count = int.from_bytes(raw[12:20], "little")
    tok = np.frombuffer(raw, dtype="<u2", count=count, offset=32).astype(np.int64)
    T, V = sp["seq_len"], sp["vocab"]
    x = torch.tensor(np.stack([tok[i * T:i * T + T] for i in range(n)]))
    y = torch.tensor(np.stack([tok[i * T + 1:i * T + T + 1] for i in range(n)]))
    theirs = torch.from_numpy(np.fromfile(logits_path, dtype="<f4").reshape(n, T, V)).double()
    with torch.no_grad():
        if block == "bert":
            # the MLM head on the unmasked window: every position's target is its own token
            y = x
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        else:
            logits, loss = model(x, y)
    sprout_loss = F.cross_entropy(theirs.reshape(-1, V), y.reshape(-1)).item()
    if bf16:
        rel = abs(loss.item() - sprout_loss) / sprout_loss
        print(f"bf16 export: loss {loss.item():.6f} vs sprout fp32 {sprout_loss:.6f}, rel {rel:.2e}")
        assert rel <= 1e-2, "the bf16 model's loss is off by more than bf16 rounding explains"
    else:
        err = ((logits - theirs).abs().max() / theirs.abs().max()).item()
        print(f"f32 export: logits max-abs diff / max-abs {err:.2e} over {n} windows; "
              f"loss {loss.item():.6f} vs sprout {sprout_loss:.6f}")
        assert err <= 1e-5, "logits differ"
    check_tokenizer(d, T, cfg, bert_ref.MLM_NSPECIAL if block == "bert" else 0)
    print(f"check_hf_export: {d}: ok ({len(names)} tensors, {cfg['torch_dtype']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
