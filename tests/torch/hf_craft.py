"""Makes a damaged or variant copy of a Hugging Face GPT-2, LLaMA or BERT directory for
tests/cli/hf.sh, hf_llama.sh and hf_bert.sh.

usage: hf_craft.py SRC DST CASE     (CASE: see CASES; prints nothing, exit 0)
Each case changes one thing of SRC's model.safetensors or config.json as struct/json/numpy
(never the safetensors package), so the import sees exactly that fault."""
import json
import os
import shutil
import struct
import sys

import numpy as np


def load(d):
    raw = open(os.path.join(d, "model.safetensors"), "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def save(d, header, data, pad=True):
    h = json.dumps(header).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    open(os.path.join(d, "model.safetensors"), "wb").write(struct.pack("<Q", len(h)) + h + data)


def retype(header, data, dtype):
    """every tensor re-encoded: F16 (numpy's round to nearest) or an untied lm_head copy"""
    out, parts, off = {"__metadata__": header.get("__metadata__", {})}, [], 0
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        a = np.frombuffer(data[b:end], dtype="<f4").astype(dtype)
        parts.append(a.tobytes())
        out[name] = {"dtype": {"<f2": "F16", "<f4": "F32"}[np.dtype(dtype).str],
                     "shape": e["shape"], "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
    return out, b"".join(parts)


def main():
    src, dst, case = sys.argv[1:4]
    shutil.copytree(src, dst)
    header, data = load(dst)
    cfgp = os.path.join(dst, "config.json")
    cfg = json.load(open(cfgp))
    L = "transformer.h.0.ln_1.weight"
    if case == "wrong_shape":
        c = header[L]["shape"][0]
        header[L]["shape"] = [c // 2, 2]
    elif case == "missing":
        del header["transformer.h.1.mlp.c_fc.bias"]
    elif case == "unexpected":
        header["transformer.h.7.ln_1.weight"] = header.pop("transformer.h.1.ln_1.weight")
    elif case == "unknown_dtype":
        header[L]["dtype"] = "Q4"
    elif case == "f64":
        header["transformer.ln_f.bias"]["dtype"] = "F64"
    elif case == "out_of_range":
        e = header["transformer.ln_f.bias"]["data_offsets"]
        header["transformer.ln_f.bias"]["data_offsets"] = [len(data) - 4, len(data) - 4 + e[1] - e[0]]
    elif case == "overlap":
        header["transformer.h.0.ln_1.bias"]["data_offsets"] = list(header[L]["data_offsets"])
    elif case == "size_mismatch":
        b, e = header[L]["data_offsets"]
        header[L]["data_offsets"] = [b, e - 4]
    elif case in ("truncated_header", "not_json", "absurd_length", "short_file"):
        save(dst, header, data)
        p = os.path.join(dst, "model.safetensors")
        raw = bytearray(open(p, "rb").read())
        (n,) = struct.unpack("<Q", raw[:8])
        if case == "truncated_header":
            raw = raw[:8 + n // 2]
        elif case == "not_json":
            raw[8 + n // 2] = ord("}")
        elif case == "absurd_length":
            raw[:8] = struct.pack("<Q", 1 << 40)
        else:
            raw = raw[:5]
        open(p, "wb").write(raw)
        return 0
    elif case == "f16":
        header, data = retype(header, data, "<f2")
    elif case in ("lm_head", "lm_head_untied", "decoder_untied", "decoder_bias_differs"):
        # a second name of a tensor, a copy of it (lm_head: of the embedding) or not (the others);
        # bert's decoder weight and bias stand for word_embeddings and predictions.bias
        E = next(e for e in ("transformer.wte.weight", "model.embed_tokens.weight",
                             "bert.embeddings.word_embeddings.weight") if e in header)
        H = "cls.predictions.decoder.weight" if case == "decoder_untied" else "lm_head.weight"
        if case == "decoder_bias_differs":
            E, H = "cls.predictions.bias", "cls.predictions.decoder.bias"
        b, e = header[E]["data_offsets"]
        w = np.frombuffer(data[b:e], dtype="<f4").copy()
        if case != "lm_head":
            w[5] += 1.0
        header[H] = {"dtype": "F32", "shape": header[E]["shape"],
                     "data_offsets": [len(data), len(data) + w.nbytes]}
        data = data + w.tobytes()
    elif case == "hub_style":  # as the Hub's gpt2 file: GPT2Model names, causal-mask buffers
        header = {k[len("transformer."):] if k.startswith("transformer.") else k: v
                  for k, v in header.items()}
        T = cfg["n_positions"]
        mask = np.tril(np.ones((T, T), dtype="<f4")).reshape(1, 1, T, T)
        for i in range(cfg["n_layer"]):
            header[f"h.{i}.attn.bias"] = {"dtype": "F32", "shape": [1, 1, T, T],
                                          "data_offsets": [len(data), len(data) + mask.nbytes]}
            data += mask.tobytes()
            header[f"h.{i}.attn.masked_bias"] = {"dtype": "F32", "shape": [],
                                                 "data_offsets": [len(data), len(data) + 4]}
            data += np.array(-1e4, dtype="<f4").tobytes()
    elif case == "llama_hub":  # LlamaModel names, older transformers' rotary inv_freq buffers
        header = {k[len("model."):] if k.startswith("model.") else k: v for k, v in header.items()}
        hd = cfg["hidden_size"] // cfg["num_attention_heads"]
        inv = (1.0 / cfg["rope_theta"] ** (np.arange(0, hd, 2) / hd)).astype("<f4")
        for i in range(cfg["num_hidden_layers"]):
            header[f"layers.{i}.self_attn.rotary_emb.inv_freq"] = {
                "dtype": "F32", "shape": [hd // 2], "data_offsets": [len(data), len(data) + inv.nbytes]}
            data += inv.tobytes()
    elif case == "missing_q_proj":
        del header["model.layers.1.self_attn.q_proj.weight"]
    elif case == "up_proj_shape":  # transposed: the same bytes, the wrong layout
        header["model.layers.0.mlp.up_proj.weight"]["shape"].reverse()
    elif case == "lm_head_missing":
        del header["lm_head.weight"]
    elif case == "cfg_rope_scaling":
        cfg["rope_scaling"] = {"rope_type": "linear", "factor": 2.0}
    elif case == "rope_parameters":  # newer transformers: the rotary settings in one object
        cfg["rope_parameters"] = {"rope_type": "default", "rope_theta": cfg.pop("rope_theta")}
        del cfg["rope_scaling"]
    elif case == "cfg_rope_type":
        cfg["rope_parameters"] = {"rope_type": "llama3", "rope_theta": cfg["rope_theta"], "factor": 8.0}
    elif case == "cfg_rope_theta2":
        cfg["rope_parameters"] = {"rope_type": "default", "rope_theta": 2 * cfg["rope_theta"]}
    elif case == "cfg_kv_heads":
        cfg["num_key_value_heads"] = cfg["num_attention_heads"] // 2
    elif case == "cfg_attention_bias":
        cfg["attention_bias"] = True
    elif case == "cfg_model_type":
        cfg["model_type"] = "mistral"
    elif case == "cfg_missing":
        del cfg["n_embd"]
    elif case == "cfg_relu":
        cfg["activation_function"] = "relu"
    elif case == "cfg_untied":
        cfg["tie_word_embeddings"] = False
    elif case == "cfg_n_ctx":
        cfg["n_ctx"] = cfg["n_positions"] + 1
    elif case == "cfg_eps":
        cfg["layer_norm_epsilon"] = 1e-6
    elif case == "bert_hub":  # older transformers: position_ids saved, the decoder's weight and
        # bias under their own names (the same tensors as word_embeddings, predictions.bias)
        T = cfg["max_position_embeddings"]
        ids = np.arange(T, dtype="<i8").reshape(1, T)
        header["bert.embeddings.position_ids"] = {"dtype": "I64", "shape": [1, T],
                                                  "data_offsets": [len(data), len(data) + ids.nbytes]}
        data += ids.tobytes()
        for copy, of in (("cls.predictions.decoder.weight", "bert.embeddings.word_embeddings.weight"),
                         ("cls.predictions.decoder.bias", "cls.predictions.bias")):
            b, e = header[of]["data_offsets"]
            header[copy] = {"dtype": "F32", "shape": header[of]["shape"],
                            "data_offsets": [len(data), len(data) + e - b]}
            data += data[b:e]
    elif case == "bert_bare":  # a BertModel-style save: the encoder's names without "bert."
        header = {k[len("bert."):] if k.startswith("bert.") else k: v for k, v in header.items()}
    elif case == "cfg_type_vocab":
        cfg["type_vocab_size"] = 2
    elif case == "cfg_gelu_new":
        cfg["hidden_act"] = "gelu_new"
    elif case == "cfg_is_decoder":
        cfg["is_decoder"] = True
    elif case == "cfg_relative":
        cfg["position_embedding_type"] = "relative_key"
    elif case == "missing_query":
        del header["bert.encoder.layer.0.attention.self.query.weight"]
    elif case == "intermediate_shape":  # transposed: the same bytes, the wrong layout
        header["bert.encoder.layer.0.intermediate.dense.weight"]["shape"].reverse()
    elif case == "cfg_not_json":
        open(cfgp, "w").write(json.dumps(cfg)[:-1] + ",}")
        return 0
    else:
        raise SystemExit(f"unknown case {case}")
    json.dump(cfg, open(cfgp, "w"))
    save(dst, header, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
