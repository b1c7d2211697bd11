# Sourced by the CLI scripts that run on either block kind (restart.sh, layout.sh, growth.sh,
# valgrind.sh, ckpt_interop.sh):
# SP_BLOCK (gpt2 by default, llama or bert) becomes the model.block of every run they start; the
# names and counts they check that depend on what a block holds come from here, and the vocab
# and train.objective the kind trains with (bert: masked, 256 bytes + 4 special ids).
# OTHER_SETS: what a config of OTHER_KIND needs beyond model.block.
KIND=${SP_BLOCK:-gpt2}
VOCAB=256 OBJECTIVE=causal OTHER_SETS=()
case "$KIND" in
gpt2)
  FC_TENSOR=transformer.h.1.mlp.c_fc.weight OTHER_KIND=llama
  PROJ3_TENSOR=transformer.h.3.mlp.c_proj.weight EMBED_TENSOR=transformer.wte.weight
  NORM_TENSOR=transformer.ln_f.bias
  ;;
llama)
  FC_TENSOR=model.layers.1.mlp.gate_proj.weight OTHER_KIND=gpt2
  PROJ3_TENSOR=model.layers.3.mlp.down_proj.weight EMBED_TENSOR=model.embed_tokens.weight
  NORM_TENSOR=model.norm.weight
  ;;
bert)
  FC_TENSOR=bert.encoder.layer.1.intermediate.dense.weight OTHER_KIND=gpt2
  PROJ3_TENSOR=bert.encoder.layer.3.output.dense.weight
  EMBED_TENSOR=bert.embeddings.word_embeddings.weight
  NORM_TENSOR=cls.predictions.transform.LayerNorm.bias
  VOCAB=260 OBJECTIVE=masked OTHER_SETS=(--set train.objective=causal)
  ;;
*) echo "SP_BLOCK=$KIND: want gpt2, llama or bert"; exit 2 ;;
esac
