/* Pipeline schedules as lists of actions, and a simulator that checks them without MPI. */
#include "sprout/schedule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void push(sp_schedule *s, sp_action_kind k, int mb) {
    s->a[s->n++] = (sp_action){k, mb};
}

/* A forward or backward with the messages that belong to it on this stage. */
static void fwd(sp_schedule *s, int mb) {
    if (s->stage > 0) push(s, SP_ACT_RECV_ACT, mb);
    push(s, SP_ACT_FWD, mb);
    if (s->stage < s->pp - 1) push(s, SP_ACT_SEND_ACT, mb);
}

static void bwd(sp_schedule *s, int mb) {
    if (s->stage < s->pp - 1) push(s, SP_ACT_RECV_GRAD, mb);
    push(s, SP_ACT_BWD, mb);
    if (s->stage > 0) push(s, SP_ACT_SEND_GRAD, mb);
}

int sp_sched_build(const char *kind, int pp, int stage, int m, sp_schedule *out, sp_err *err) {
    memset(out, 0, sizeof *out);
    if (!kind) return sp_err_set(err, SP_EINPUT, "parallel.schedule: missing schedule kind");
    int gpipe = !strcmp(kind, "gpipe");
    if (!gpipe && strcmp(kind, "1f1b"))
        return sp_err_set(err, SP_EINPUT, "parallel.schedule: unknown schedule '%s'", kind);
    if (pp < 1) return sp_err_set(err, SP_EINPUT, "pipeline stages: %d < 1", pp);
    if (stage < 0 || stage >= pp)
        return sp_err_set(err, SP_EINPUT, "stage %d outside 0..%d", stage, pp - 1);
    if (m < 1) return sp_err_set(err, SP_EINPUT, "micro-batches per step: %d < 1", m);
    out->stage = stage, out->pp = pp, out->m = m;
    /* at most RECV + FWD + SEND and RECV + BWD + SEND per micro-batch */
    out->a = malloc((size_t)m * 6 * sizeof *out->a);
    if (!out->a) return sp_err_set(err, SP_ERUNTIME, "out of memory");
    if (gpipe) {
        for (int i = 0; i < m; i++) fwd(out, i);
        for (int i = 0; i < m; i++) bwd(out, i);
        return SP_OK;
    }
    int warm = pp - 1 - stage < m ? pp - 1 - stage : m, f = 0, b = 0;
    while (f < warm) fwd(out, f++);
    while (f < m) fwd(out, f++), bwd(out, b++);
    while (b < m) bwd(out, b++);
    return SP_OK;
}

void sp_sched_free(sp_schedule *s) {
    free(s->a);
    memset(s, 0, sizeof *s);
}

int sp_sched_peak_live(const sp_schedule *s) {
    int live = 0, peak = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->a[i].kind == SP_ACT_FWD && ++live > peak) peak = live;
        if (s->a[i].kind == SP_ACT_BWD) live--;
    }
    return peak;
}

/* Event-driven simulation. act[s*m + mb] is the tick at which stage s sent mb's activation and
 * grad[] the same for gradients (negative: not yet). Each stage has its own clock and runs its
 * list in order while the next action's inputs exist; a receive moves the clock up to the send
 * tick. Since every stage is sequential, the ticks do not depend on the order in which stages are
 * visited, and sweeping until nothing moves finds every reachable action. */
int sp_sched_simulate(const sp_schedule *st, int pp, int m, double *makespan, sp_err *err) {
    if (pp < 1 || m < 1)
        return sp_err_set(err, SP_EINPUT, "simulate: pp %d and micro-batches %d must be >= 1", pp,
                          m);
    if (!st) return sp_err_set(err, SP_EINPUT, "simulate: no schedules");
    for (int s = 0; s < pp; s++)
        if (st[s].stage != s || st[s].pp != pp || st[s].m != m || st[s].n < 0 ||
            (st[s].n > 0 && !st[s].a))
            return sp_err_set(err, SP_EINPUT,
                              "simulate: schedule %d is for stage %d of %d with %d micro-batches, "
                              "want stage %d of %d with %d",
                              s, st[s].stage, st[s].pp, st[s].m, s, pp, m);
    size_t n = (size_t)pp * (size_t)m;
    double *act = malloc(n * sizeof *act), *grad = malloc(n * sizeof *grad);
    char *fwd_done = calloc(n, 1), *bwd_done = calloc(n, 1), *have_act = calloc(n, 1),
         *have_grad = calloc(n, 1);
    int *pc = calloc((size_t)pp, sizeof *pc);
    double *clock = calloc((size_t)pp, sizeof *clock);
    int rc = SP_OK;
    if (!act || !grad || !fwd_done || !bwd_done || !have_act || !have_grad || !pc || !clock) {
        rc = sp_err_set(err, SP_ERUNTIME, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) act[i] = grad[i] = -1;
    for (int progress = 1; progress;) {
        progress = 0;
        for (int s = 0; s < pp; s++) {
            while (pc[s] < st[s].n) {
                sp_action a = st[s].a[pc[s]];
                if (a.mb < 0 || a.mb >= m) {
                    rc = sp_err_set(err, SP_ERUNTIME, "stage %d: micro-batch %d out of range", s,
                                    a.mb);
                    goto out;
                }
                size_t k = (size_t)s * m + (size_t)a.mb;
                const char *bad = NULL;
                switch ((int)a.kind) {
                case SP_ACT_RECV_ACT:
                    if (s == 0)
                        bad = "receives an activation on the first stage";
                    else if (have_act[k])
                        bad = "receives an activation twice"; /* MPI would wait forever */
                    else if (act[k - m] < 0)
                        goto blocked;
                    else if (act[k - m] > clock[s])
                        clock[s] = act[k - m];
                    have_act[k] = 1;
                    break;
                case SP_ACT_FWD:
                    if (s > 0 && !have_act[k])
                        bad = "runs a forward before receiving its input";
                    else if (fwd_done[k])
                        bad = "runs a forward twice";
                    clock[s] += 1, fwd_done[k] = 1;
                    break;
                case SP_ACT_SEND_ACT:
                    if (s == pp - 1 || !fwd_done[k])
                        bad = "sends an activation it has not made";
                    else if (act[k] >= 0)
                        bad = "sends an activation twice";
                    act[k] = clock[s];
                    break;
                case SP_ACT_RECV_GRAD:
                    if (s == pp - 1)
                        bad = "receives a gradient on the last stage";
                    else if (have_grad[k])
                        bad = "receives a gradient twice";
                    else if (grad[k + m] < 0)
                        goto blocked;
                    else if (grad[k + m] > clock[s])
                        clock[s] = grad[k + m];
                    have_grad[k] = 1;
                    break;
                case SP_ACT_BWD:
                    if (!fwd_done[k])
                        bad = "runs a backward before its forward";
                    else if (s < pp - 1 && !have_grad[k])
                        bad = "runs a backward before receiving its gradient";
                    else if (bwd_done[k])
                        bad = "runs a backward twice";
                    clock[s] += 2, bwd_done[k] = 1;
                    break;
                case SP_ACT_SEND_GRAD:
                    if (s == 0 || !bwd_done[k])
                        bad = "sends a gradient it has not made";
                    else if (grad[k] >= 0)
                        bad = "sends a gradient twice";
                    grad[k] = clock[s];
                    break;
                default:
                    bad = "has an unknown action";
                }
                if (bad) {
                    rc = sp_err_set(err, SP_ERUNTIME, "stage %d %s (micro-batch %d, action %d)", s,
                                    bad, a.mb, pc[s]);
                    goto out;
                }
                pc[s]++, progress = 1;
            }
        blocked:;
        }
    }
    /* every stuck stage, so the message shows the whole wait cycle */
    char why[400];
    size_t o = 0;
    why[0] = 0;
    for (int s = 0; s < pp && o < sizeof why; s++)
        if (pc[s] < st[s].n) {
            sp_action a = st[s].a[pc[s]];
            o += (size_t)snprintf(why + o, sizeof why - o,
                                  "%sstage %d waits for the %s of micro-batch %d", o ? ", " : "", s,
                                  a.kind == SP_ACT_RECV_ACT ? "activation" : "gradient", a.mb);
        }
    if (why[0]) {
        rc = sp_err_set(err, SP_ERUNTIME, "deadlock: %s", why);
        goto out;
    }
    for (int s = 0; s < pp; s++) {
        for (int i = 0; i < m; i++)
            if (!fwd_done[(size_t)s * m + i] || !bwd_done[(size_t)s * m + i]) {
                rc = sp_err_set(err, SP_ERUNTIME, "stage %d never runs micro-batch %d both ways", s,
                                i);
                goto out;
            }
    }
    double span = 0;
    for (int s = 0; s < pp; s++) span = clock[s] > span ? clock[s] : span;
    if (makespan) *makespan = span;
out:
    free(act), free(grad), free(fwd_done), free(bwd_done), free(have_act), free(have_grad);
    free(pc), free(clock);
    return rc;
}
