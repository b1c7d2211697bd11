/* The block kinds: one row per kind, each described in its own file (kind_<name>.c). Adding a
 * kind is one row here plus that file (docs/architecture.md, "Block kinds"). */
#include "sprout/model.h"

#include <string.h>

extern const sp_kind sp_kind_gpt2, sp_kind_llama, sp_kind_bert;

const sp_kind *const sp_kinds[] = {&sp_kind_gpt2, &sp_kind_llama, &sp_kind_bert};
const int sp_nkinds = (int)(sizeof sp_kinds / sizeof sp_kinds[0]);

int sp_kind_find(const char *name) {
    for (int i = 0; name && i < sp_nkinds; i++)
        if (!strcmp(sp_kinds[i]->name, name)) return i;
    return -1;
}

const sp_kind *sp_kind_of(const sp_spec *s) {
    return sp_kinds[s->kind >= 0 && s->kind < sp_nkinds ? s->kind : 0];
}

const char *sp_kind_names(void) {
    static char buf[256];
    if (!buf[0])
        for (int i = 0; i < sp_nkinds; i++) {
            if (i) strncat(buf, ", ", sizeof buf - strlen(buf) - 1);
            strncat(buf, sp_kinds[i]->name, sizeof buf - strlen(buf) - 1);
        }
    return buf;
}
