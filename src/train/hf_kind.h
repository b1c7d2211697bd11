/* The Hugging Face side of a block kind (docs/interop.md): one row per kind, each in its own
 * file (hf_<kind>.c), listed in hf_kinds.c. hf.c knows no kind by name: whatever differs between
 * GPT2LMHeadModel, LlamaForCausalLM and BertForMaskedLM (config.json, the names' prefix, the head)
 * is a field of the kind's row. The tensors themselves need no map: checkpoints already name every
 * tensor by its HF name in HF's layout, and the fused slab sections (llama's q | k | v, gate | up)
 * are separate tensors of the kind's table, so each is its own HF tensor both ways. */
#ifndef SP_TRAIN_HF_KIND_H
#define SP_TRAIN_HF_KIND_H

#include <stddef.h>

#include "sprout/core.h"
#include "sprout/json.h"
#include "sprout/model.h"

/* a config.json field whose value must be one sprout computes the same way (absent or null: the
 * transformers default, which is sprout's) */
typedef struct sp_hf_rule {
    const char *key;
    sp_json_type type; /* of the accepted value; SP_JSON_NULL: any value but null is refused */
    const char *str1, *str2;
    int bad_bool; /* for booleans: the value that is refused (1 true, 0 false) */
    const char *why;
} sp_hf_rule;

typedef struct sp_hf_kind {
    const char *kind;       /* sp_kind.name */
    const char *arch;       /* config.json's architectures[0] */
    const char *model_type; /* config.json's model_type: what import picks the row by */
    const char *prefix;     /* of the names, left off by a save of the bare model (GPT2Model) */
    const char *block;      /* a block's name after the prefix, before its index: "h." */
    /* buffers older transformers saved with each block (the name after "<block><i>"), not
     * parameters: skipped by import; NULL-terminated */
    const char *const *buffers;
    /* the same for the model's global buffers (the name after the prefix); NULL-terminated */
    const char *const *global_buffers;
    /* the head's name: in a tied model's file it may be present and must equal the embedding
     * (global tensor 0); untied, it is one of the kind's tensors */
    const char *head;
    /* a second name some saves give one of the kind's tensors ({alias, tensor}, BERT's decoder
     * bias): may be present and must equal it; {NULL}: none */
    const char *alias[2];
    /* the ids the kind's objective reserves after the tokenizer's vocabulary (BERT's [MASK]
     * [CLS] [SEP] [PAD], docs/data.md): the tokenizer is the one of vocab_size - n_special */
    int n_special;
    /* config.json's names of vocab, seq_len, d_model, n_head, d_ff, n_layer */
    const char *field[6];
    int ff_optional; /* d_ff's field may be absent or null: the kind's default d_ff */
    /* config.json's names of the spec's hyper-parameters (sp_spec_hparams order); NULL: none */
    const char *hparam[3];
    const sp_hf_rule *rules;
    int nrules;
    /* config.json's fields beyond architectures, model_type, vocab_size, bos/eos and torch_dtype,
     * as `  "key": value,\n` lines */
    void (*write_config)(char *buf, size_t n, const sp_spec *s);
    /* the fields beyond the six sizes and the rules (hyper-parameters, aliases) into s; path
     * names the file in errors */
    int (*read_config)(const char *path, const sp_json_value *j, sp_spec *s, sp_err *err);
} sp_hf_kind;

extern const sp_hf_kind *const sp_hf_kinds[];
extern const int sp_hf_nkinds;
/* the row of the spec's kind; NULL: the kind has no Hugging Face layout in sprout */
const sp_hf_kind *sp_hf_kind_of(const sp_spec *s);
/* the row of a config.json model_type; NULL: none */
const sp_hf_kind *sp_hf_kind_by_type(const char *model_type);
/* "gpt2, llama": the model types, for messages */
const char *sp_hf_kind_types(void);

/* config.json's integer field key, >= 1 (absent or null: def, or an error when def < 0) */
int sp_hf_cfg_int(const char *path, const sp_json_value *j, const char *key, int64_t def, int *out,
                  sp_err *err);
/* config.json's positive finite number key (absent or null: def) */
int sp_hf_cfg_num(const char *path, const sp_json_value *j, const char *key, double def,
                  double *out, sp_err *err);
/* v in the fewest digits that read back as v ("1e-05", not "1.0000000000000001e-05") */
const char *sp_hf_num(double v, char *buf, size_t n);

#endif
