/* `sprout plot RUN`: the run's metrics.jsonl drawn by gnuplot into a PNG. Training loss,
 * validation loss and learning rate against steps, the losses against FLOPs, growth events
 * marked in both. */
#include "sprout/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* the number after "key": in one metrics line; 0 when absent (null included) */
static int field(const char *line, const char *key, double *v) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p) return 0;
    char *end;
    *v = strtod(p + strlen(pat), &end);
    return end != p + strlen(pat);
}

static int str_field(const char *line, const char *key, char *out, size_t n) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(line, pat);
    if (!p) return 0;
    p += strlen(pat);
    size_t k = strcspn(p, "\"");
    if (k >= n) k = n - 1;
    memcpy(out, p, k);
    out[k] = 0;
    return 1;
}

/* gnuplot's text, data blocks included, for the metrics in f; counts the training lines */
static void script(FILE *g, FILE *f, const char *title, const char *png, int *n_train) {
    char line[8192], op[64];
    double step, flops, loss, lr, val;
    fprintf(g, "$train << EOD\n");
    *n_train = 0;
    while (fgets(line, sizeof line, f))
        if (!strstr(line, "\"event\"") && field(line, "step", &step) &&
            field(line, "flops", &flops) && field(line, "loss", &loss) && field(line, "lr", &lr))
            fprintf(g, "%.17g %.17g %.9g %.9g\n", step, flops, loss, lr), ++*n_train;
    fprintf(g, "EOD\n$val << EOD\n");
    rewind(f);
    int n_val = 0;
    while (fgets(line, sizeof line, f))
        if (!strstr(line, "\"event\"") && field(line, "step", &step) &&
            field(line, "flops", &flops) && field(line, "val_loss", &val))
            fprintf(g, "%.17g %.17g %.9g\n", step, flops, val), n_val++;
    fprintf(g, "EOD\n");
    fprintf(g, "set terminal pngcairo size 1400,520 font ',10'\nset output '%s'\n", png);
    fprintf(g, "set multiplot layout 1,2 title \"%s\" noenhanced\nset grid\nset key top right\n",
            title);
    /* growth events: a dashed line and the operator's name, at their step and at their FLOPs */
    for (int panel = 0; panel < 2; panel++) {
        rewind(f);
        fprintf(g, "unset arrow\nunset label\n");
        while (fgets(line, sizeof line, f)) {
            if (!strstr(line, "\"event\":\"growth\"") || !field(line, "step", &step) ||
                !field(line, "flops", &flops) || !str_field(line, "op", op, sizeof op))
                continue;
            double x = panel ? flops : step;
            fprintf(g,
                    "set arrow from first %.17g, graph 0 to first %.17g, graph 1 nohead dt 2 "
                    "lc rgb 'gray40'\n"
                    "set label \"%s\" at first %.17g, graph 0.97 offset 0.5,0 noenhanced\n",
                    x, x, op, x);
        }
        const char *valplot = n_val ? ", $val using %d:3 with linespoints lw 2 pt 7 ps 0.6 "
                                      "title 'validation loss'"
                                    : "";
        if (!panel) {
            fprintf(g, "set xlabel 'step'\nset ylabel 'loss (nats/token)'\nset y2label 'lr'\n"
                       "set y2tics\nset ytics nomirror\nset format y2 '%%.1e'\n");
            fprintf(g, "plot $train using 1:3 with lines lw 1 title 'training loss'");
            fprintf(g, valplot, 1);
            fprintf(g, ", $train using 1:4 axes x1y2 with lines dt 3 lw 1 title 'lr'\n");
        } else {
            fprintf(g, "unset y2label\nunset y2tics\nset ytics mirror\nset xlabel 'FLOPs'\n"
                       "set format x '%%.1e'\nset xtics rotate by -30\nset rmargin 6\n");
            fprintf(g, "plot $train using 2:3 with lines lw 1 title 'training loss'");
            fprintf(g, valplot, 2);
            fprintf(g, "\n");
        }
    }
    fprintf(g, "unset multiplot\nset output\n");
}

int sp_metrics_plot(const char *run, const char *png, sp_err *err) {
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    FILE *f = fopen(path, "r");
    if (!f)
        return sp_err_set(err, SP_EINPUT, "%s: %s (is %s a run directory?)", path, strerror(errno),
                          run);
    snprintf(tmp, sizeof tmp, "%s.tmp", png);
    if (strchr(tmp, '\'') || strchr(run, '"')) {
        fclose(f);
        return sp_err_set(err, SP_EINPUT, "%s: quotes in the path are not supported", png);
    }
    /* the file first: a run with no step lines yet is bad input, not a gnuplot failure */
    char line[8192];
    int steps = 0;
    while (fgets(line, sizeof line, f)) steps += !strstr(line, "\"event\"");
    if (!steps) {
        fclose(f);
        return sp_err_set(err, SP_EINPUT, "%s: no training lines to plot yet", path);
    }
    rewind(f);
    FILE *g = popen("gnuplot", "w");
    if (!g) {
        fclose(f);
        return sp_err_set(err, SP_ERUNTIME, "cannot start gnuplot: %s", strerror(errno));
    }
    int n_train;
    script(g, f, run, tmp, &n_train);
    fclose(f);
    int st = pclose(g);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st)) {
        unlink(tmp);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
            return sp_err_set(err, SP_ERUNTIME,
                              "gnuplot is not installed (Debian: apt-get install gnuplot-nox)");
        return sp_err_set(err, SP_ERUNTIME, "gnuplot failed drawing %s (status %d)", png,
                          WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    if (rename(tmp, png)) {
        unlink(tmp);
        return sp_err_set(err, SP_ERUNTIME, "%s: %s", png, strerror(errno));
    }
    return SP_OK;
}
