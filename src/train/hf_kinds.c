/* The Hugging Face rows of the block kinds (hf_kind.h): one per kind, in its file hf_<kind>.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_kind.h"

extern const sp_hf_kind sp_hf_gpt2, sp_hf_llama, sp_hf_bert;

const sp_hf_kind *const sp_hf_kinds[] = {&sp_hf_gpt2, &sp_hf_llama, &sp_hf_bert};
const int sp_hf_nkinds = (int)(sizeof sp_hf_kinds / sizeof sp_hf_kinds[0]);

const sp_hf_kind *sp_hf_kind_of(const sp_spec *s) {
    for (int i = 0; i < sp_hf_nkinds; i++)
        if (!strcmp(sp_hf_kinds[i]->kind, sp_kind_of(s)->name)) return sp_hf_kinds[i];
    return NULL;
}

const sp_hf_kind *sp_hf_kind_by_type(const char *model_type) {
    for (int i = 0; i < sp_hf_nkinds; i++)
        if (!strcmp(sp_hf_kinds[i]->model_type, model_type)) return sp_hf_kinds[i];
    return NULL;
}

const char *sp_hf_kind_types(void) {
    static char buf[256];
    if (!buf[0])
        for (int i = 0; i < sp_hf_nkinds; i++) {
            if (i) strncat(buf, ", ", sizeof buf - strlen(buf) - 1);
            strncat(buf, sp_hf_kinds[i]->model_type, sizeof buf - strlen(buf) - 1);
        }
    return buf;
}

int sp_hf_cfg_int(const char *path, const sp_json_value *j, const char *key, int64_t def, int *out,
                  sp_err *err) {
    const sp_json_value *v = sp_json_get(j, key);
    if (!v || (v->type == SP_JSON_NULL && def >= 0)) {
        if (def < 0) return sp_err_set(err, SP_EINPUT, "%s: %s is missing", path, key);
        *out = (int)def;
        return SP_OK;
    }
    if (v->type != SP_JSON_NUMBER || !v->is_int || v->i64 < 1 || v->i64 > 0x7fffffff)
        return sp_err_set(err, SP_EINPUT, "%s: %s must be a positive integer", path, key);
    *out = (int)v->i64;
    return SP_OK;
}

int sp_hf_cfg_num(const char *path, const sp_json_value *j, const char *key, double def,
                  double *out, sp_err *err) {
    const sp_json_value *v = sp_json_get(j, key);
    if (!v || v->type == SP_JSON_NULL) {
        *out = def;
        return SP_OK;
    }
    if (v->type != SP_JSON_NUMBER || !(v->num > 0) || !isfinite(v->num))
        return sp_err_set(err, SP_EINPUT, "%s: %s must be a positive number", path, key);
    *out = v->num;
    return SP_OK;
}

const char *sp_hf_num(double v, char *buf, size_t n) {
    /* integral values as transformers writes them, 10000.0 */
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, n, "%.1f", v);
        return buf;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, v);
        if (strtod(buf, NULL) == v) break;
    }
    return buf;
}
