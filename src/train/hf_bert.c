/* BERT's Hugging Face side (hf_kind.h): BertForMaskedLM, BertConfig. sprout's bert is the config
 * with one token type, absolute learned positions, erf GELU, no decoder or cross-attention, and
 * the MLM decoder tied to the word embeddings. */
#include <stdio.h>
#include <string.h>

#include "hf_kind.h"
#include "sprout/mlm.h"

static const sp_hf_rule k_rules[] = {
    {"hidden_act", SP_JSON_STRING, "gelu", NULL, -1, "sprout's bert GELU is the erf one"},
    {"position_embedding_type", SP_JSON_STRING, "absolute", NULL, -1,
     "sprout's bert learns absolute positions"},
    {"is_decoder", SP_JSON_FALSE, NULL, NULL, 1, "sprout's bert attends both ways"},
    {"add_cross_attention", SP_JSON_FALSE, NULL, NULL, 1, "sprout has no cross-attention"},
    {"tie_word_embeddings", SP_JSON_TRUE, NULL, NULL, 0,
     "sprout ties the MLM decoder to word_embeddings"},
};

static void write_config(char *buf, size_t n, const sp_spec *s) {
    char eps[32];
    /* pad_token_id: [PAD], the last of the four special ids a masked model's vocabulary ends
     * with (docs/data.md) */
    snprintf(buf, n,
             "  \"hidden_size\": %d,\n  \"num_hidden_layers\": %d,\n"
             "  \"num_attention_heads\": %d,\n  \"intermediate_size\": %d,\n"
             "  \"hidden_act\": \"gelu\",\n  \"hidden_dropout_prob\": 0.0,\n"
             "  \"attention_probs_dropout_prob\": 0.0,\n  \"max_position_embeddings\": %d,\n"
             "  \"type_vocab_size\": 1,\n  \"layer_norm_eps\": %s,\n"
             "  \"position_embedding_type\": \"absolute\",\n  \"is_decoder\": false,\n"
             "  \"add_cross_attention\": false,\n  \"initializer_range\": 0.02,\n"
             "  \"pad_token_id\": %d,\n  \"use_cache\": true,\n"
             "  \"tie_word_embeddings\": true,\n",
             s->d_model, s->n_layer, s->n_head, s->d_ff, s->seq_len,
             sp_hf_num(s->norm_eps, eps, sizeof eps), s->vocab - 1);
}

static int read_config(const char *path, const sp_json_value *j, sp_spec *s, sp_err *err) {
    int types = 0, rc;
    /* absent: BertConfig's defaults (two token types, eps 1e-12) */
    if ((rc = sp_hf_cfg_int(path, j, "type_vocab_size", 2, &types, err)) ||
        (rc = sp_hf_cfg_num(path, j, "layer_norm_eps", 1e-12, &s->norm_eps, err)))
        return rc;
    if (types != 1)
        return sp_err_set(err, SP_EINPUT,
                          "%s: type_vocab_size: %d is not supported (sprout's bert has one token "
                          "type)",
                          path, types);
    s->tie_head = 1;
    /* not a BERT setting: the config's default, which the spec carries for every hparams kind */
    s->rope_theta = 10000.0;
    return SP_OK;
}

/* not parameters: the position ids older transformers saved (rebuilt by every loader), and the
 * decoder's bias, which HF saves under both names as one tensor */
static const char *const k_globals[] = {"embeddings.position_ids", NULL};

const sp_hf_kind sp_hf_bert = {
    .kind = "bert",
    .arch = "BertForMaskedLM",
    .model_type = "bert",
    .prefix = "bert.",
    .block = "encoder.layer.",
    .global_buffers = k_globals,
    .head = "cls.predictions.decoder.weight",
    .n_special = SP_MLM_NSPECIAL,
    .alias = {"cls.predictions.decoder.bias", "cls.predictions.bias"},
    .field = {"vocab_size", "max_position_embeddings", "hidden_size", "num_attention_heads",
              "intermediate_size", "num_hidden_layers"},
    .hparam = {"layer_norm_eps", "rope_theta", "tie_word_embeddings"},
    .rules = k_rules,
    .nrules = (int)(sizeof k_rules / sizeof k_rules[0]),
    .write_config = write_config,
    .read_config = read_config,
};
