/* Restart: choosing a checkpoint, loading it onto the current layout, keeping the newest few. */
#include "sprout/train.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* step_XXXXXXXX.h5 names in dir, newest first (names sort by step: the width is fixed) */
static int list_ckpts(const char *dir, char ***names) {
    *names = NULL;
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "step_", 5) || len < 9 || strcmp(e->d_name + len - 3, ".h5"))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **grown = realloc(*names, (size_t)cap * sizeof *grown);
            if (!grown) break;
            *names = grown;
        }
        (*names)[n++] = strdup(e->d_name);
    }
    closedir(d);
    for (int i = 1; i < n; i++) /* insertion sort, descending: a handful of names */
        for (int j = i; j > 0 && strcmp((*names)[j - 1], (*names)[j]) < 0; j--) {
            char *t = (*names)[j];
            (*names)[j] = (*names)[j - 1];
            (*names)[j - 1] = t;
        }
    return n;
}

static void free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

int sp_resume_pick(const char *arg, const char *out, char *path, size_t n, const sp_log *log,
                   sp_err *err) {
    path[0] = 0;
    if (!arg) return SP_OK;
    if (strcmp(arg, "auto")) {
        if (sp_ckpt_verify(arg, NULL, err)) return err->code;
        snprintf(path, n, "%s", arg);
        return SP_OK;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/ckpt", out);
    char **names;
    int k = list_ckpts(dir, &names);
    for (int i = 0; i < k; i++) {
        char cand[4400];
        snprintf(cand, sizeof cand, "%s/%s", dir, names[i]);
        sp_err why = {0};
        if (sp_ckpt_verify(cand, NULL, &why) == SP_OK) {
            snprintf(path, n, "%s", cand);
            break;
        }
        sp_warn(log, "resume: skipping %s: %s", cand, why.msg);
    }
    free_names(names, k);
    if (!path[0]) sp_info(log, "resume: no checkpoint in %s verifies; starting afresh", dir);
    return SP_OK;
}

int sp_resume_load(sp_trainer *tr, const char *path, sp_err *err) {
    sp_spec fs;
    sp_train_state st;
    if (sp_ckpt_read_header(path, &fs, &st, err)) return err->code;
    if (st.growth_index < 0 || st.growth_index > tr->gs.n)
        return sp_err_set(err, SP_EINPUT,
                          "%s: checkpoint is at growth stage %lld but the config has %d growth "
                          "event(s)",
                          path, (long long)st.growth_index, tr->gs.n);
    /* the config's model is the one after the checkpoint's growth events */
    sp_spec want = sp_grow_spec_at(tr->cfg, &tr->gs, (int)st.growth_index);
    const sp_spec *s = &want;
    const char *names[6] = {"vocab", "seq_len", "d_model", "n_head", "d_ff", "n_layer"};
    int file[6] = {fs.vocab, fs.seq_len, fs.d_model, fs.n_head, fs.d_ff, fs.n_layer};
    int mine[6] = {s->vocab, s->seq_len, s->d_model, s->n_head, s->d_ff, s->n_layer};
    for (int i = 0; i < 6; i++)
        if (file[i] != mine[i])
            return sp_err_set(err, SP_EINPUT,
                              "%s: checkpoint has model.%s = %d but the config says %d (at "
                              "growth stage %lld)",
                              path, names[i], file[i], mine[i], (long long)st.growth_index);
    if (st.seed != tr->cfg->train.seed)
        return sp_err_set(err, SP_EINPUT,
                          "%s: checkpoint has train.seed = %llu but the config says %llu", path,
                          (unsigned long long)st.seed, (unsigned long long)tr->cfg->train.seed);
    /* plans are drawn from the step, so the stage follows from it: a different stage means the
     * method's stages moved (boundaries, counts or train.steps changed) */
    if (tr->sn.method && st.subnet_stage != sp_subnet_stage(&tr->sn, st.step))
        return sp_err_set(err, SP_EINPUT,
                          "%s: checkpoint was written in %s stage %lld at step %lld but the "
                          "config puts that step in stage %d (%s.boundaries or train.steps "
                          "changed?)",
                          path, sp_subnet_name(&tr->sn), (long long)st.subnet_stage,
                          (long long)st.step, sp_subnet_stage(&tr->sn, st.step),
                          sp_subnet_name(&tr->sn));
    if (st.growth_index != tr->st.growth_index &&
        sp_trainer_relayout(tr, (int)st.growth_index, err))
        return err->code;
    if (sp_ckpt_load(path, &tr->model, 1, err) || sp_trainer_load_saved(tr, path, err))
        return err->code;
    tr->st = st;
    return SP_OK;
}

void sp_ckpt_prune(const char *dir, int keep, const sp_log *log) {
    char **names;
    int k = list_ckpts(dir, &names);
    for (int i = keep; i < k; i++) {
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        if (unlink(p) == 0) sp_info(log, "removed old checkpoint %s", p);
    }
    free_names(names, k);
}
