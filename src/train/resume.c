/* Restart: which checkpoint to resume from (OUT/ckpt/latest and the checkpoints' own lineage,
 * never file names alone), loading it onto the current layout with a fallback, and which files
 * a run may move aside or delete (only those of its own line of history). docs/checkpoints.md
 * describes the design. */
#include "sprout/testpoint.h"
#include "sprout/train.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One step_XXXXXXXX.h5 of OUT/ckpt, as its header describes it. */
typedef struct ck_entry {
    char name[64];
    int64_t name_step; /* from the name */
    int ok;            /* the header (root, /spec, /train) verifies */
    sp_train_state st;
    char why[512]; /* when !ok */
} ck_entry;

/* step_ followed by digits and .h5: the names sprout writes (anything else is not looked at) */
static int parse_name(const char *s, int64_t *step) {
    size_t len = strlen(s);
    if (strncmp(s, "step_", 5) || len < 10 || len > 40 || strcmp(s + len - 3, ".h5")) return -1;
    for (size_t i = 5; i < len - 3; i++)
        if (s[i] < '0' || s[i] > '9') return -1;
    *step = strtoll(s + 5, NULL, 10);
    return 0;
}

static void read_entry(const char *dir, ck_entry *e) {
    char p[4400];
    snprintf(p, sizeof p, "%s/%s", dir, e->name);
    sp_spec s;
    sp_err why = {0};
    e->ok = sp_ckpt_read_header(p, &s, &e->st, &why) == SP_OK;
    snprintf(e->why, sizeof e->why, "%s", why.msg);
}

/* Every checkpoint-named file of dir with its header, newest step first. */
static int scan(const char *dir, ck_entry **out) {
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        int64_t step;
        if (parse_name(de->d_name, &step)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            ck_entry *grown = realloc(*out, (size_t)cap * sizeof *grown);
            if (!grown) break;
            *out = grown;
        }
        ck_entry *e = &(*out)[n++];
        memset(e, 0, sizeof *e);
        snprintf(e->name, sizeof e->name, "%s", de->d_name);
        e->name_step = step;
        read_entry(dir, e);
    }
    closedir(d);
    for (int i = 1; i < n; i++) /* insertion sort, newest first: a handful of files */
        for (int j = i; j > 0 && (*out)[j - 1].name_step < (*out)[j].name_step; j--) {
            ck_entry t = (*out)[j];
            (*out)[j] = (*out)[j - 1];
            (*out)[j - 1] = t;
        }
    return n;
}

static int find(const ck_entry *e, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(e[i].name, name)) return i;
    return -1;
}

/* The entry holding st's parent: the parent step's file, and it must say it is that step of
 * that line (a file copied over the name is not the parent). */
static int parent_of(const ck_entry *e, int n, const sp_train_state *st) {
    if (!st->parent_run[0] || st->parent_step < 0 || st->parent_step >= st->step) return -1;
    char name[64];
    snprintf(name, sizeof name, "step_%08lld.h5", (long long)st->parent_step);
    int i = find(e, n, name);
    if (i < 0 || !e[i].ok || e[i].st.step != st->parent_step ||
        strcmp(e[i].st.run_id, st->parent_run))
        return -1;
    return i;
}

/* The head OUT/ckpt/latest names (a plain checkpoint name), or "" when it is absent or not one. */
static void read_latest(const char *dir, char *name, size_t n) {
    char p[4400], buf[128] = "";
    snprintf(p, sizeof p, "%s/latest", dir);
    name[0] = 0;
    FILE *f = fopen(p, "r");
    if (!f) return;
    if (fgets(buf, sizeof buf, f)) buf[strcspn(buf, "\r\n")] = 0;
    fclose(f);
    int64_t step;
    if (!parse_name(buf, &step)) snprintf(name, n, "%s", buf);
}

/* What to try, in order, with why each one is there. */
typedef struct candidate {
    char path[4400];
    char why[128];
} candidate;

#define MAX_CANDIDATES 64

static void add(candidate *c, int *n, const char *dir, const char *name, const char *why) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(strrchr(c[i].path, '/') + 1, name)) return;
    if (*n == MAX_CANDIDATES) return;
    snprintf(c[*n].path, sizeof c[*n].path, "%s/%s", dir, name);
    snprintf(c[*n].why, sizeof c[*n].why, "%s", why);
    (*n)++;
}

/* Rank 0, --resume auto. The head is what `latest` names; then its parents (the checkpoint
 * each one continues); then older checkpoints of the same line. Files newer than the head, of
 * other lines, or without a sprout header are never candidates, whatever their names say. With
 * no `latest` at all, the newest checkpoints whose headers verify, by step. */
static int plan_auto(const char *dir, candidate *c, const sp_log *log) {
    ck_entry *e;
    int n = scan(dir, &e), nc = 0;
    char head[64];
    read_latest(dir, head, sizeof head);
    int h = head[0] ? find(e, n, head) : -1;
    int64_t head_step = INT64_MAX;
    if (head[0]) parse_name(head, &head_step);
    const char *line = h >= 0 && e[h].ok ? e[h].st.run_id : NULL;
    if (h >= 0) {
        add(c, &nc, dir, head, "latest");
        char why[128];
        for (int i = e[h].ok ? parent_of(e, n, &e[h].st) : -1, depth = 0; i >= 0 && depth < n;
             i = parent_of(e, n, &e[i].st), depth++) {
            snprintf(why, sizeof why, "parent of %s", c[nc - 1].path + strlen(dir) + 1);
            add(c, &nc, dir, e[i].name, why);
        }
    } else if (head[0])
        sp_warn(log, "resume: %s/latest names %s, which is missing", dir, head);
    for (int i = 0; i < n; i++) {
        if (!e[i].ok || e[i].name_step >= head_step || (line && strcmp(e[i].st.run_id, line)))
            continue;
        add(c, &nc, dir, e[i].name,
            head[0] ? "older checkpoint of latest's line" : "newest by step, no latest file");
    }
    for (int i = 0; i < n; i++) {
        if (e[i].name_step > head_step && head[0])
            sp_info(log, "resume: ignoring %s/%s: newer than latest (%s)", dir, e[i].name, head);
        else if (!e[i].ok && strcmp(e[i].name, head))
            sp_warn(log, "resume: skipping %s/%s: %s", dir, e[i].name, e[i].why);
    }
    free(e);
    return nc;
}

/* Same path after resolving links and ".." (files that do not exist are never the same). */
static int same_file(const char *a, const char *b) {
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

/* A new line of history: its id names where it starts and what it runs, so that the same
 * branch of the same config gets the same id on every layout and every rerun. */
static void new_line(sp_train_state *st, const char *parent_run, int64_t parent_step,
                     const char *yaml) {
    uint32_t h[2];
    for (int k = 0; k < 2; k++) {
        h[k] = sp_crc32(0, k ? "sprout line b" : "sprout line a", 13);
        h[k] = sp_crc32(h[k], parent_run, strlen(parent_run));
        h[k] = sp_crc32(h[k], &parent_step, sizeof parent_step);
        h[k] = sp_crc32(h[k], yaml ? yaml : "", yaml ? strlen(yaml) : 0);
    }
    char id[SP_RUN_ID_LEN];
    snprintf(id, sizeof id, "%08x%08x", h[0], h[1]);
    memcpy(st->run_id, id, sizeof id);
    snprintf(st->parent_run, sizeof st->parent_run, "%s", parent_run);
    st->parent_step = parent_step;
}

/* One load attempt on every rank; err gets every failing rank's reason in one line (ranks with
 * the same reason are listed together), so that a tensor only a later stage reads is named with
 * its rank. Returns the largest failing code, or SP_OK on every rank. */
static int load_all(sp_trainer *tr, const char *path, sp_err *err) {
    sp_err mine = {0};
    int rc = sp_resume_load(tr, path, &mine), worst = rc;
    MPI_Allreduce(MPI_IN_PLACE, &worst, 1, MPI_INT, MPI_MAX, tr->comm);
    if (!worst) return SP_OK;
    int world;
    MPI_Comm_size(tr->comm, &world);
    char *all = tr->rank == 0 ? calloc((size_t)world, sizeof mine.msg) : NULL;
    if (!rc) mine.msg[0] = 0;
    MPI_Gather(mine.msg, sizeof mine.msg, MPI_CHAR, all, sizeof mine.msg, MPI_CHAR, 0, tr->comm);
    if (tr->rank != 0 || !all) {
        free(all);
        return sp_err_set(err, worst, "%s: loading failed (the reasons are on rank 0)", path);
    }
    char line[sizeof err->msg] = "";
    size_t plen = strlen(path), used = 0;
    for (int r = 0; r < world; r++) {
        const char *m = all + (size_t)r * sizeof mine.msg;
        int dup = !m[0];
        for (int q = 0; q < r && !dup; q++) dup = !strcmp(m, all + (size_t)q * sizeof mine.msg);
        if (dup) continue;
        char ranks[128] = "";
        size_t rl = 0;
        for (int q = r; q < world && rl + 12 < sizeof ranks; q++)
            if (!strcmp(m, all + (size_t)q * sizeof mine.msg))
                rl += (size_t)snprintf(ranks + rl, sizeof ranks - rl, "%s%d", rl ? "," : "", q);
        const char *reason =
            !strncmp(m, path, plen) && !strncmp(m + plen, ": ", 2) ? m + plen + 2 : m;
        if (world > 1)
            used += (size_t)snprintf(line + used, used < sizeof line ? sizeof line - used : 0,
                                     "%srank%s %s: %s", used ? "; " : "",
                                     strchr(ranks, ',') ? "s" : "", ranks, reason);
        else
            used += (size_t)snprintf(line + used, sizeof line - used, "%s", reason);
    }
    free(all);
    return sp_err_set(err, worst, "%s: %s", path, line);
}

int sp_resume(sp_trainer *tr, const char *arg, const char *yaml, int *loaded, const sp_log *log,
              sp_err *err) {
    *loaded = 0;
    const char *out = tr->cfg->run.out;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/ckpt", out);
    candidate *c = NULL;
    int nc = 0, is_auto = arg && !strcmp(arg, "auto");
    sp_test_point("verify", -1);
    if (tr->rank == 0 && arg) {
        c = calloc(MAX_CANDIDATES, sizeof *c);
        if (c && is_auto)
            nc = plan_auto(dir, c, log);
        else if (c) {
            snprintf(c[0].path, sizeof c[0].path, "%s", arg);
            snprintf(c[0].why, sizeof c[0].why, "given");
            nc = 1;
        }
    }
    MPI_Bcast(&nc, 1, MPI_INT, 0, tr->comm);
    char path[4400] = "", head[64] = "", first_why[sizeof err->msg] = "";
    int rc = SP_OK, k;
    for (k = 0; k < nc; k++) {
        if (tr->rank == 0) snprintf(path, sizeof path, "%s", c[k].path);
        MPI_Bcast(path, sizeof path, MPI_CHAR, 0, tr->comm);
        sp_test_point("load", -1);
        rc = load_all(tr, path, err);
        if (!rc) break;
        if (!is_auto) break; /* a file the user names is strict */
        if (!k) snprintf(first_why, sizeof first_why, "%s", err->msg);
        sp_warn(log, "resume: skipping %s", err->msg);
    }
    if (rc && is_auto)
        rc = sp_err_set(err, rc, "resume: no checkpoint of %s loads; the newest: %s", dir,
                        first_why);
    if (!rc && tr->rank == 0 && nc) {
        const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        if (k == 0)
            sp_info(log, "resume: %s (%s, step %lld, verified)", name, c[0].why,
                    (long long)tr->st.step);
        else
            sp_info(log,
                    "resume: %s (%s) damaged: %s; falling back to %s (%s, step %lld, verified)",
                    strrchr(c[0].path, '/') + 1, c[0].why, first_why, name, c[k].why,
                    (long long)tr->st.step);
    }
    free(c);
    if (rc) return rc;
    if (!nc) {
        if (is_auto) sp_info(log, "resume: no checkpoint in %s verifies; starting afresh", dir);
        new_line(&tr->st, "", -1, yaml);
        return SP_OK;
    }
    *loaded = 1;
    sp_info(log, "resumed from %s at step %lld (%lld tokens)", path, (long long)tr->st.step,
            (long long)tr->st.tokens);
    /* a changed train.steps: say what it changes, refuse what cannot be honoured */
    if ((rc = sp_run_check_steps(tr, path, log, err))) return rc;
    /* auto continues the line it chose; a file given by name continues its line only when it
     * is the head `latest` names, and otherwise starts a new line branching off it */
    if (!is_auto) {
        if (tr->rank == 0) read_latest(dir, head, sizeof head);
        MPI_Bcast(head, sizeof head, MPI_CHAR, 0, tr->comm);
        char hp[4400];
        snprintf(hp, sizeof hp, "%s/%s", dir, head);
        int cont = head[0] && same_file(path, hp);
        MPI_Bcast(&cont, 1, MPI_INT, 0, tr->comm);
        if (!cont) {
            char parent[SP_RUN_ID_LEN];
            memcpy(parent, tr->st.run_id, sizeof parent);
            new_line(&tr->st, parent, tr->st.step, yaml);
            sp_info(log,
                    "resume: %s is not the head of %s (latest %s): a new line of history "
                    "%s branches off it at step %lld",
                    path, dir, head[0] ? head : "absent", tr->st.run_id, (long long)tr->st.step);
            return SP_OK;
        }
    }
    memcpy(tr->st.parent_run, tr->st.run_id, sizeof tr->st.parent_run);
    tr->st.parent_step = tr->st.step;
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
    sp_spec want = sp_grow_spec_at(&tr->gs, (int)st.growth_index);
    const sp_spec *s = &want;
    if (fs.kind != s->kind)
        return sp_err_set(err, SP_EINPUT,
                          "%s: checkpoint has model.block = %s but the config says %s", path,
                          sp_kind_of(&fs)->name, sp_kind_of(s)->name);
    if (sp_spec_hparams_differ(&fs, s))
        return sp_err_set(err, SP_EINPUT,
                          "%s: checkpoint has model.norm_eps %g, rope_theta %g, tie_head %d but "
                          "the config says %g, %g, %d",
                          path, fs.norm_eps, fs.rope_theta, fs.tie_head, s->norm_eps, s->rope_theta,
                          s->tie_head);
    int i = sp_spec_diff(&fs, s);
    if (i >= 0)
        return sp_err_set(err, SP_EINPUT,
                          "%s: checkpoint has model.%s = %d but the config says %d (at growth "
                          "stage %lld)",
                          path, sp_spec_fields[i].name, sp_spec_get(&fs, i), sp_spec_get(s, i),
                          (long long)st.growth_index);
    /* the tokens must mean what they meant: the same tokenizer with the same vocabulary */
    sp_tok_files ck;
    if (tr->tok.kind && sp_ckpt_read_tokenizer(path, &ck, err)) return err->code;
    if (tr->tok.kind) {
        int same = sp_tok_files_equal(&ck, &tr->tok), same_kind = ck.kind == tr->tok.kind;
        const char *had = ck.kind->name;
        sp_tok_files_free(&ck);
        if (!same)
            return sp_err_set(err, SP_EINPUT,
                              "%s: checkpoint was trained on %s tokens but data.train %s holds %s "
                              "tokens%s",
                              path, had, tr->train.path, tr->tok.kind->name,
                              same_kind ? " of another vocabulary" : "");
    }
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

/* Moves dir/name into dir/superseded/<line>/, keeping its name: out of every later choice and
 * prune, and never deleted. */
static void move_aside(const char *dir, const char *name, const char *line, const sp_log *log) {
    char sub[4400], to[4500], from[4400];
    snprintf(sub, sizeof sub, "%s/superseded", dir);
    mkdir(sub, 0755);
    snprintf(sub, sizeof sub, "%s/superseded/%s", dir, line[0] ? line : "unknown");
    mkdir(sub, 0755);
    snprintf(from, sizeof from, "%s/%s", dir, name);
    snprintf(to, sizeof to, "%s/%s", sub, name);
    if (rename(from, to) == 0)
        sp_info(log, "moved %s (not of this line of history) to %s", from, to);
    else
        sp_warn(log, "cannot move %s aside to %s: %s", from, to, strerror(errno));
}

void sp_resume_supersede(const char *dir, const sp_train_state *st, const sp_log *log) {
    ck_entry *e;
    int n = scan(dir, &e);
    int first = strcmp(st->parent_run, st->run_id) != 0; /* the line's first checkpoint */
    char name[64];
    snprintf(name, sizeof name, "step_%08lld.h5", (long long)st->step);
    for (int i = 0; i < n; i++) {
        int ours = e[i].ok && !strcmp(e[i].st.run_id, st->run_id);
        /* the name about to be written, if another line's or unreadable: never overwritten */
        int target = !strcmp(e[i].name, name) && !ours;
        /* a new line: the other lines' checkpoints past the branch point */
        int ahead = first && e[i].ok && !ours && e[i].st.step > st->parent_step;
        if (target || ahead) move_aside(dir, e[i].name, e[i].ok ? e[i].st.run_id : "", log);
    }
    free(e);
}

void sp_resume_prune(const char *dir, int keep, const sp_train_state *head, const sp_log *log) {
    ck_entry *e;
    int n = scan(dir, &e);
    char name[64];
    snprintf(name, sizeof name, "step_%08lld.h5", (long long)head->step);
    int i = find(e, n, name), kept = 0;
    /* the line of history back from the head, through the parents; nothing else is touched */
    for (int depth = 0; i >= 0 && e[i].ok && depth <= n; depth++) {
        int next = parent_of(e, n, &e[i].st);
        if (++kept > keep) {
            char p[4400];
            snprintf(p, sizeof p, "%s/%s", dir, e[i].name);
            if (unlink(p) == 0) sp_info(log, "removed old checkpoint %s", p);
        }
        i = next;
    }
    free(e);
}
