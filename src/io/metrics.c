/* metrics.jsonl writer: lines are flushed as written so that a killed job keeps its history. */
#include "sprout/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

static void put(sp_json *j, const char *fmt, ...) {
    if (j->n >= sizeof j->buf) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(j->buf + j->n, sizeof j->buf - j->n, fmt, ap);
    va_end(ap);
    if (w > 0) j->n += (size_t)w;
    if (j->n >= sizeof j->buf) j->n = sizeof j->buf - 1;
}

static void key(sp_json *j, const char *k) {
    put(j, "%s\"%s\":", j->n > 1 ? "," : "", k);
}

void sp_json_begin(sp_json *j) {
    j->n = 0;
    j->buf[0] = 0;
    put(j, "{");
}

void sp_json_int(sp_json *j, const char *k, int64_t v) {
    key(j, k);
    put(j, "%lld", (long long)v);
}

void sp_json_num(sp_json *j, const char *k, double v) {
    key(j, k);
    if (isfinite(v))
        put(j, "%.9g", v);
    else
        put(j, "null");
}

void sp_json_str(sp_json *j, const char *k, const char *v) {
    key(j, k);
    put(j, "\"");
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\')
            put(j, "\\%c", *p);
        else if ((unsigned char)*p < 0x20)
            put(j, "\\u%04x", *p);
        else
            put(j, "%c", *p);
    }
    put(j, "\"");
}

const char *sp_json_end(sp_json *j) {
    put(j, "}");
    return j->buf;
}

int sp_metrics_open(sp_metrics *m, const char *path, int append, sp_err *err) {
    m->f = fopen(path, append ? "a" : "w");
    if (!m->f) return sp_err_set(err, SP_ERUNTIME, "%s: %s", path, strerror(errno));
    return SP_OK;
}

void sp_metrics_write(sp_metrics *m, sp_json *j) {
    if (!m->f) return;
    /* wall-clock time of the line (UTC): which lines belong to which session of a restarted run */
    struct timespec ts;
    struct tm tm;
    char when[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t w = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + w, sizeof when - w, ".%03ldZ", ts.tv_nsec / 1000000);
    sp_json_str(j, "time", when);
    fprintf(m->f, "%s\n", sp_json_end(j));
    fflush(m->f);
}

void sp_metrics_close(sp_metrics *m) {
    if (m->f) fclose(m->f);
    m->f = NULL;
}
