/* The run directory (run.out): created, checked to be a directory, and locked for the run's
 * lifetime, so that two runs pointed at the same directory do not interleave their metrics
 * and checkpoints. */
#define _GNU_SOURCE
#include "sprout/train.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* errors that come from the path the user chose (exit 2), not from the machine (exit 1) */
static int path_errno(int e) {
    return e == ENOTDIR || e == EACCES || e == EROFS || e == ENAMETOOLONG || e == ELOOP ||
           e == EPERM;
}

/* mkdir -p, with a message naming run.out and the component that is in the way */
static int make_dirs(const char *out, sp_err *err) {
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
