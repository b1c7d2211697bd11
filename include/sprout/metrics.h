/* sprout metrics: OUT/metrics.jsonl, one JSON object per line (design §8). */
#ifndef SPROUT_METRICS_H
#define SPROUT_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "sprout/core.h"

/* A JSON object under construction; keys are added in call order. */
typedef struct sp_json {
    char buf[4096];
    size_t n;
} sp_json;

void sp_json_begin(sp_json *j);
void sp_json_int(sp_json *j, const char *key, int64_t v);
/* %.9g keeps a float round-trippable; non-finite values become null */
void sp_json_num(sp_json *j, const char *key, double v);
void sp_json_str(sp_json *j, const char *key, const char *v);
/* closes the object; returns the text without newline */
const char *sp_json_end(sp_json *j);

typedef struct sp_metrics {
    FILE *f;
} sp_metrics;

/* append = 0 truncates (a fresh run), 1 appends (a resumed run) */
int sp_metrics_open(sp_metrics *m, const char *path, int append, sp_err *err);
void sp_metrics_write(sp_metrics *m, sp_json *j);
void sp_metrics_close(sp_metrics *m);

/* `sprout plot`: draws run/metrics.jsonl with gnuplot into png (temp + rename): training and
 * validation loss and the learning rate against steps, the losses against FLOPs, each growth
 * event a dashed line. SP_EINPUT when there is nothing to plot, SP_ERUNTIME when gnuplot fails. */
int sp_metrics_plot(const char *run, const char *png, sp_err *err);

#endif
