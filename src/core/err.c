/* Error values and stderr logging. */
#include "sprout/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int sp_err_set(sp_err *err, int code, const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    err->all_ranks = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

int sp_err_wrap(sp_err *err, const char *fmt, ...) {
    if (!err) return SP_ERUNTIME;
    char prefix[256], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
    return err->code;
}

/* The copy of the log in the run directory. Like stderr it belongs to the process, not to one
 * caller's sp_log: every module logs through quiet or rank-local copies of sp_log. */
static FILE *g_tee;

void sp_log_tee(void *f) {
    g_tee = f;
}

static void vlog(const char *tag, const char *fmt, va_list ap) {
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    fprintf(stderr, "%s%s\n", tag, line);
    fflush(stderr);
    if (g_tee) {
        fprintf(g_tee, "%s%s\n", tag, line);
        fflush(g_tee);
    }
}

void sp_info(const sp_log *log, const char *fmt, ...) {
    if (log && (log->rank != 0 || log->quiet)) return;
    va_list ap;
    va_start(ap, fmt);
    vlog("", fmt, ap);
    va_end(ap);
}

void sp_warn(const sp_log *log, const char *fmt, ...) {
    if (log && log->rank != 0) return;
    va_list ap;
    va_start(ap, fmt);
    vlog("warning: ", fmt, ap);
    va_end(ap);
}
