"""The PyTorch reference model of a parity dump's block kind: the dump's root attribute `block`
(absent: gpt2) picks gpt2_ref.GPT2 or llama_ref.LlamaForCausalLM, built from the dump's spec
attributes (llama: norm_eps, rope_theta, tie_head too). Both take (inputs, targets) and return
(logits, loss), so gpt2_ref's grads_at, run_training and load_group serve either."""
import gpt2_ref
import llama_ref
import numpy as np


def attr(at, k, kind=int):
    if k not in at:
        raise KeyError(f"attribute /{k}: missing")
    return kind(np.asarray(at[k]).reshape(()))


def block_of(at):
    b = at.get("block", b"gpt2")
    return b.decode() if isinstance(b, bytes) else str(b)


def make_model(at):
    """An untrained reference model with the dump's spec; raises KeyError/ValueError."""
    V, T, C, H, F, L = (attr(at, k) for k in ("vocab", "seq_len", "d_model", "n_head", "d_ff",
                                               "n_layer"))
    block = block_of(at)
    if block == "gpt2":
        return gpt2_ref.GPT2(gpt2_ref.Config(V, T, C, H, L, F))
    if block == "llama":
        cfg = llama_ref.LlamaConfig(vocab_size=V, hidden_size=C, intermediate_size=F,
                                    num_hidden_layers=L, num_attention_heads=H,
                                    max_position_embeddings=T,
                                    rms_norm_eps=attr(at, "norm_eps", float),
                                    rope_theta=attr(at, "rope_theta", float),
                                    tie_word_embeddings=bool(attr(at, "tie_head")))
        return llama_ref.LlamaForCausalLM(cfg)
    raise ValueError(f"attribute /block: '{block}' has no reference model")
