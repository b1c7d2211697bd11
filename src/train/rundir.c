/* The run directory as a new user meets it: an existing run is not overwritten by accident, the
 * resolved config and the log are kept beside the metrics, a run directory stands for its
 * latest checkpoint, and a changed train.steps on a restart is said out loud or refused. */
#include "sprout/train.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* number of step_*.h5 files in dir (0 when dir does not exist) */
static int count_ckpts(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        n += !strncmp(e->d_name, "step_", 5) && len > 8 && !strcmp(e->d_name + len - 3, ".h5");
    }
    closedir(d);
    return n;
}

static int nonempty_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0;
}

int sp_run_check_dir(const char *out, int force, const sp_log *log, sp_err *err) {
    char ck[4200], mx[4200];
    snprintf(ck, sizeof ck, "%s/ckpt", out);
    snprintf(mx, sizeof mx, "%s/metrics.jsonl", out);
    int n = count_ckpts(ck), has_metrics = nonempty_file(mx);
    if (!n && !has_metrics) return SP_OK;
    if (!force)
        return sp_err_set(err, SP_EINPUT,
                          "run.out %s already holds a run (%d checkpoint(s)%s): continue it with "
                          "--resume auto, start it over with --force, or choose another "
                          "--set run.out=DIR",
                          out, n, has_metrics ? ", metrics.jsonl" : "");
    /* starting over: an old, later checkpoint left behind would be what --resume auto picks */
    DIR *d = opendir(ck);
    struct dirent *e;
    int removed = 0;
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        int old =
            (!strncmp(e->d_name, "step_", 5) && len > 8 && !strcmp(e->d_name + len - 3, ".h5")) ||
            !strcmp(e->d_name, "latest");
        char p[4500];
        snprintf(p, sizeof p, "%s/%s", ck, e->d_name);
        if (old && unlink(p) && errno != ENOENT) {
            closedir(d);
            return sp_err_set(err, SP_ERUNTIME, "%s: %s", p, strerror(errno));
        }
        removed += old;
    }
    if (d) closedir(d);
    sp_warn(log,
            "--force: starting %s over (removed %d checkpoint file(s); metrics.jsonl restarts)",
            out, removed);
    return SP_OK;
}

int sp_run_mkdirs(const char *out, sp_err *err) {
    char buf[4200];
    snprintf(buf, sizeof buf, "%s/ckpt", out);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) && errno != EEXIST)
            return sp_err_set(err, SP_ERUNTIME, "%s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) && errno != EEXIST)
        return sp_err_set(err, SP_ERUNTIME, "%s: %s", buf, strerror(errno));
    return SP_OK;
}

int sp_run_save_config(const char *out, const char *yaml, sp_err *err) {
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/config.yaml", out);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    /* the file is what `train` ran with after every --set: a reader never sees half of it */
    if (!f || fputs("# the resolved config of this run (every key, after --set)\n", f) < 0 ||
        fputs(yaml, f) < 0 || fflush(f) || fsync(fileno(f))) {
        if (f) fclose(f);
        unlink(tmp);
        return sp_err_set(err, SP_ERUNTIME, "%s: cannot write", path);
    }
    if (fclose(f) || rename(tmp, path)) {
        unlink(tmp);
        return sp_err_set(err, SP_ERUNTIME, "%s: cannot write", path);
    }
    return SP_OK;
}

int sp_run_resolve_ckpt(const char *arg, char *path, size_t n, sp_err *err) {
    struct stat sb;
    if (stat(arg, &sb) || !S_ISDIR(sb.st_mode)) {
        snprintf(path, n, "%s", arg);
        return SP_OK;
    }
    char latest[4200], name[256] = "";
    snprintf(latest, sizeof latest, "%s/ckpt/latest", arg);
    FILE *f = fopen(latest, "r");
    if (!f)
        return sp_err_set(err, SP_EINPUT,
                          "%s: a directory without ckpt/latest (not a run directory?)", arg);
    int ok = fgets(name, sizeof name, f) != NULL;
    fclose(f);
    name[strcspn(name, "\r\n")] = 0;
    if (!ok || !name[0] || strchr(name, '/'))
        return sp_err_set(err, SP_EINPUT, "%s: does not name a checkpoint", latest);
    snprintf(path, n, "%s/ckpt/%s", arg, name);
    return SP_OK;
}

/* train.steps of the config stored in the checkpoint, and the schedule's growth steps (-1: not
 * readable; only the explanation needs it) */
static int64_t ckpt_steps(const char *path, sp_config *old, sp_grow_sched *gs) {
    char *yaml = NULL;
    sp_err e = {0};
    memset(old, 0, sizeof *old);
    memset(gs, 0, sizeof *gs);
    if (sp_ckpt_read_config(path, &yaml, &e)) return -1;
    int rc = sp_cfg_load_text(old, yaml, strlen(yaml), path, &e);
    free(yaml);
    if (rc) return -1;
    sp_log quiet = {.rank = 1, .quiet = 1}; /* rank 1 prints nothing */
    if (sp_grow_schedule(old, gs, &quiet, &e)) gs->n = 0;
    return old->train.steps;
}

int sp_run_check_steps(const sp_trainer *tr, const char *path, const sp_log *log, sp_err *err) {
    int64_t now = tr->st.step, steps = tr->cfg->train.steps;
    if (steps < now)
        return sp_err_set(err, SP_EINPUT,
                          "%s is at step %lld but train.steps = %lld ends before it: a run cannot "
                          "be shortened below its checkpoint (resume an earlier checkpoint with "
                          "--resume FILE, or start a new run.out)",
                          path, (long long)now, (long long)steps);
    if (tr->rank != 0) return SP_OK;
    sp_config old;
    sp_grow_sched gs;
    int64_t was = ckpt_steps(path, &old, &gs);
    if (was >= 0 && was != steps) {
        sp_info(log,
                "train.steps changed from %lld (the checkpoint's config) to %lld: the "
                "learning-rate schedule now ends at step %lld instead of %lld (lr at step %lld: "
                "%.3g -> %.3g)",
                (long long)was, (long long)steps, (long long)steps, (long long)was, (long long)now,
                sp_lr_at(&old, now), sp_lr_at(tr->cfg, now));
        for (int e = (int)tr->st.growth_index; e < tr->gs.n && e < gs.n; e++)
            if (gs.ev[e].step != tr->gs.ev[e].step)
                sp_info(log, "train.steps changed: growth[%d] moves from step %lld to %lld", e,
                        (long long)gs.ev[e].step, (long long)tr->gs.ev[e].step);
    }
    if (steps == now)
        sp_info(log,
                "%s: the run is complete at train.steps = %lld; nothing to train (raise "
                "train.steps to extend it)",
                path, (long long)steps);
    sp_grow_sched_free(&gs);
    sp_cfg_free(&old);
    return SP_OK;
}
