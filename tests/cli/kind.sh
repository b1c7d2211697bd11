# Sourced by the CLI scripts that run on either block kind (restart.sh, layout.sh, growth.sh,
# valgrind.sh, ckpt_interop.sh):
# SP_BLOCK (gpt2 by default, or llama) becomes the model.block of every run they start; the
# names and counts they check that depend on what a block holds come from here.
KIND=${SP_BLOCK:-gpt2}
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
*) echo "SP_BLOCK=$KIND: want gpt2 or llama"; exit 2 ;;
esac
