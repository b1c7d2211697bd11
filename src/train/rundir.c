/* The run directory (run.out) as a user meets it: created and checked to be a directory,
 * locked for the run's lifetime (two runs pointed at one directory would interleave their metrics
 * and checkpoints), an existing run not overwritten by accident, the resolved config and the log
 * kept beside the metrics, a run directory standing for its latest checkpoint, and a changed
 * train.steps on a restart said out loud or refused. */
#define _GNU_SOURCE
#include "sprout/train.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* errors that come from the path the user chose (exit 2), not from the machine (exit 1) */
static int path_errno(int e) {
    return e == ENOTDIR || e == EACCES || e == EROFS || e == ENAMETOOLONG || e == ELOOP ||
           e == EPERM;
}

/* run.out must leave room for the checkpoint paths: its length is bounded by the config
 * (SP_CFG_PATH_MAX), and the kernel refuses a component of more than NAME_MAX; said before anything
 * is created, not at the first checkpoint, which with checkpoint.every 0 is the end of the run */
static int check_out_path(const char *out, sp_err *err) {
    for (const char *c = out; *c;) {
        size_t n = strcspn(c, "/");
        if (n > NAME_MAX)
            return sp_err_set(err, SP_EINPUT,
                              "run.out: the component \"%.40s...\" is %zu characters, more than "
                              "NAME_MAX %d",
                              c, n, NAME_MAX);
        c += n + (c[n] == '/');
    }
    return SP_OK;
}

/* mkdir -p, with a message naming run.out and the component that is in the way */
static int make_dirs(const char *out, sp_err *err) {
    if (check_out_path(out, err)) return err->code;
    char buf[4096];
    if ((size_t)snprintf(buf, sizeof buf, "%s", out) >= sizeof buf)
        return sp_err_set(err, SP_EINPUT, "run.out: the path is too long");
    size_t n = strlen(buf);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i]) continue;
        if (i < n && buf[i - 1] == '/') continue; /* "a//b" */
        char c = buf[i];
        buf[i] = 0;
        struct stat st;
        if (mkdir(buf, 0755) && errno != EEXIST) {
            int e = errno;
            return sp_err_set(err, path_errno(e) ? SP_EINPUT : SP_ERUNTIME,
                              "run.out: cannot create %s: %s", buf, strerror(e));
        }
        if (stat(buf, &st) == 0 && !S_ISDIR(st.st_mode))
            return sp_err_set(err, SP_EINPUT, "run.out: %s exists and is not a directory", buf);
        buf[i] = c;
    }
    return SP_OK;
}

int sp_rundir_lock(const char *out, int *fd, sp_err *err) {
    *fd = -1;
    if (make_dirs(out, err)) return err->code;
    char path[4200], who[256] = "";
    snprintf(path, sizeof path, "%s/.lock", out);
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (f < 0) {
        int e = errno;
        return sp_err_set(err, path_errno(e) ? SP_EINPUT : SP_ERUNTIME, "run.out: %s: %s", path,
                          strerror(e));
    }
    /* flock: held by the open file, released by the kernel whenever the process ends (also on
     * kill -9), so a crashed run leaves no stale lock; on NFS Linux maps it to a lock the server
     * holds, which keeps runs on different nodes apart too */
    if (flock(f, LOCK_EX | LOCK_NB)) {
        int e = errno;
        ssize_t got = e == EWOULDBLOCK ? pread(f, who, sizeof who - 1, 0) : -1;
        close(f);
        if (e != EWOULDBLOCK)
            return sp_err_set(err, SP_ERUNTIME, "run.out: cannot lock %s: %s", path, strerror(e));
        who[got > 0 ? got : 0] = 0;
        who[strcspn(who, "\n")] = 0;
        return sp_err_set(err, SP_EINPUT,
                          "run.out: %s is in use by another run (%s); wait for it to end or "
                          "choose another run.out",
                          out, *who ? who : "holder unknown");
    }
    char host[128] = "?";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = 0;
    int w = snprintf(who, sizeof who, "pid %ld on %s\n", (long)getpid(), host);
    /* who holds it, for the message of the next run that tries; the lock holds either way */
    int noted = ftruncate(f, 0) == 0 && pwrite(f, who, (size_t)w, 0) == w;
    (void)noted;
    *fd = f;
    return SP_OK;
}

void sp_rundir_unlock(int fd) {
    if (fd >= 0) close(fd); /* releases the lock; the file stays (removing it would race) */
}

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
    return make_dirs(buf, err);
}

int sp_run_save_config(const char *out, const char *yaml, sp_err *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/config.yaml", out);
    /* the file is what `train` ran with after every --set: a reader never sees half of it */
    static const char head[] = "# the resolved config of this run (every key, after --set)\n";
    sp_buf parts[2] = {{head, sizeof head - 1}, {yaml, strlen(yaml)}};
    return sp_write_atomic(path, parts, 2, err);
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
    if (sp_train_grow_schedule(old, gs, &quiet, &e)) gs->n = 0;
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
