"""The PyTorch reference model of a parity dump's block kind: the dump's root attribute `block`
(absent: gpt2) picks gpt2_ref.GPT2, llama_ref.LlamaForCausalLM or bert_ref.BertForMaskedLM,
built from the dump's spec attributes (llama: norm_eps, rope_theta, tie_head too; bert:
norm_eps). All take (inputs, targets) and return (logits, loss), so gpt2_ref's grads_at,
run_training and load_group serve any of them. bert's targets are sprout's: -1 where a position
is not selected, and the loss is the mean over the selected ones (one micro-batch per step: the
step's count)."""
import bert_ref
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
    if block == "bert":
        cfg = bert_ref.BertConfig(vocab_size=V, hidden_size=C, num_hidden_layers=L,
                                  num_attention_heads=H, intermediate_size=F,
                                  max_position_embeddings=T, type_vocab_size=1,
                                  layer_norm_eps=attr(at, "norm_eps", float))
        return SproutBert(cfg)
    raise ValueError(f"attribute /block: '{block}' has no reference model")


class SproutBert(bert_ref.BertForMaskedLM):
    """BertForMaskedLM with sprout's ignored label, -1, in place of HF's -100."""

    def forward(self, inputs, targets=None):
        return super().forward(inputs, targets, ignore_index=-1)


def min_target(block):
    """The smallest target id a dump of this kind holds: -1 (not selected) for masked LM."""
    return -1 if block == "bert" else 0
