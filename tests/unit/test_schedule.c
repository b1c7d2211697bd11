/* Pipeline schedules without MPI: structure, dependencies, deadlock freedom, memory bound and
 * the bubble, for gpipe and 1f1b over a grid of stage and micro-batch counts. */
#include "sprout/schedule.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int count(const sp_schedule *s, sp_action_kind k, int mb) {
    int c = 0;
    for (int i = 0; i < s->n; i++) c += s->a[i].kind == k && s->a[i].mb == mb;
    return c;
}

static int is(const sp_schedule *s, int i, sp_action_kind k, int mb) {
    return i >= 0 && i < s->n && s->a[i].kind == k && s->a[i].mb == mb;
}

/* The neighbour rules the interpreter relies on: every message sits right next to the compute
 * it feeds or drains, and the end stages have no message towards the outside. */
static int well_formed(const sp_schedule *s) {
    int first = s->stage == 0, last = s->stage == s->pp - 1;
    for (int i = 0; i < s->n; i++) {
        sp_action a = s->a[i];
        switch (a.kind) {
        case SP_ACT_RECV_ACT:
            if (first || !is(s, i + 1, SP_ACT_FWD, a.mb)) return 0;
            break;
        case SP_ACT_SEND_ACT:
            if (last || !is(s, i - 1, SP_ACT_FWD, a.mb)) return 0;
            break;
        case SP_ACT_RECV_GRAD:
            if (last || !is(s, i + 1, SP_ACT_BWD, a.mb)) return 0;
            break;
        case SP_ACT_SEND_GRAD:
            if (first || !is(s, i - 1, SP_ACT_BWD, a.mb)) return 0;
            break;
        case SP_ACT_FWD:
            if (!first && !is(s, i - 1, SP_ACT_RECV_ACT, a.mb)) return 0;
            if (!last && !is(s, i + 1, SP_ACT_SEND_ACT, a.mb)) return 0;
            break;
        case SP_ACT_BWD:
            if (!last && !is(s, i - 1, SP_ACT_RECV_GRAD, a.mb)) return 0;
            if (!first && !is(s, i + 1, SP_ACT_SEND_GRAD, a.mb)) return 0;
            break;
        default:
            return 0;
        }
    }
    int per_mb = 2 + 2 * (s->pp > 1) + 2 * (!first && !last);
    if (s->n != per_mb * s->m) return 0;
    for (int mb = 0; mb < s->m; mb++) {
        if (count(s, SP_ACT_FWD, mb) != 1 || count(s, SP_ACT_BWD, mb) != 1) return 0;
        int f = -1, b = -1;
        for (int i = 0; i < s->n; i++) {
            if (is(s, i, SP_ACT_FWD, mb)) f = i;
            if (is(s, i, SP_ACT_BWD, mb)) b = i;
        }
        if (f > b) return 0;
    }
    return 1;
}

/* The interpreter stores the activations of mb in slot mb % peak_live: no two live
 * micro-batches may share a slot. */
static int slots_ok(const sp_schedule *s) {
    int nslots = sp_sched_peak_live(s), owner[16];
    for (int i = 0; i < nslots; i++) owner[i] = -1;
    for (int i = 0; i < s->n; i++) {
        int slot = s->a[i].mb % nslots;
        if (s->a[i].kind == SP_ACT_FWD) {
            if (owner[slot] >= 0) return 0;
            owner[slot] = s->a[i].mb;
        }
        if (s->a[i].kind == SP_ACT_BWD) {
            if (owner[slot] != s->a[i].mb) return 0;
            owner[slot] = -1;
        }
    }
    return 1;
}

/* "R0 F0 S0 r0 B0 s0": R/S = receive/send activation, r/s = receive/send gradient */
static void render(const sp_schedule *s, char *buf, size_t cap) {
    static const char tag[] = {'R', 'F', 'S', 'r', 'B', 's'};
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < s->n && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%c%d", i ? " " : "", tag[s->a[i].kind],
                              s->a[i].mb);
}

static void test_grid(tu_ctx *t) {
    const int pps[] = {1, 2, 3, 4, 8}, ms[] = {1, 2, 3, 4, 8, 16};
    const char *kinds[] = {"1f1b", "gpipe"};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 6; j++) {
                int pp = pps[i], m = ms[j];
                sp_schedule st[8];
                sp_err err = {0};
                for (int s = 0; s < pp; s++) {
                    int rc = sp_sched_build(kinds[k], pp, s, m, &st[s], &err);
                    tu_check(t, rc == 0, "%s build: %s", kinds[k], err.msg);
                    tu_check(t, well_formed(&st[s]), "%s pp %d m %d stage %d malformed", kinds[k],
                             pp, m, s);
                    int peak = sp_sched_peak_live(&st[s]);
                    int bound = k == 0 ? (pp - s < m ? pp - s : m) : m;
                    tu_check(t, peak == bound, "%s pp %d m %d stage %d holds %d, want %d", kinds[k],
                             pp, m, s, peak, bound);
                    tu_check(t, slots_ok(&st[s]), "%s pp %d m %d stage %d: slots collide", kinds[k],
                             pp, m, s);
                }
                double span = 0;
                int rc = sp_sched_simulate(st, pp, m, &span, &err);
                tu_check(t, rc == 0, "%s pp %d m %d: %s", kinds[k], pp, m, err.msg);
                /* unit costs FWD 1, BWD 2: both schedules have the bubble (pp-1)/(m+pp-1) */
                tu_check(t, span == 3.0 * (m + pp - 1), "%s pp %d m %d makespan %g, want %d",
                         kinds[k], pp, m, span, 3 * (m + pp - 1));
                for (int s = 0; s < pp; s++) sp_sched_free(&st[s]);
            }
}

/* the exact lists the interpreter gets for a 4-stage, 8-micro-batch 1f1b step, and pp = 1 */
static void test_golden(tu_ctx *t) {
    static const char *want[] = {
        "F0 S0 F1 S1 F2 S2 F3 S3 r0 B0 F4 S4 r1 B1 F5 S5 r2 B2 F6 S6 r3 B3 F7 S7 r4 B4 r5 B5 "
        "r6 B6 r7 B7",
        "R0 F0 B0 s0 R1 F1 B1 s1 R2 F2 B2 s2 R3 F3 B3 s3 R4 F4 B4 s4 R5 F5 B5 s5 R6 F6 B6 s6 R7 "
        "F7 B7 s7",
        "F0 B0 F1 B1 F2 B2",
        "F0 F1 F2 B0 B1 B2",
    };
    struct {
        const char *kind;
        int pp, stage, m;
    } c[] = {{"1f1b", 4, 0, 8}, {"1f1b", 4, 3, 8}, {"1f1b", 1, 0, 3}, {"gpipe", 1, 0, 3}};
    for (int i = 0; i < 4; i++) {
        sp_schedule s;
        sp_err err = {0};
        char buf[512];
        int rc = sp_sched_build(c[i].kind, c[i].pp, c[i].stage, c[i].m, &s, &err);
        render(&s, buf, sizeof buf);
        tu_check(t, rc == 0 && !strcmp(buf, want[i]), "%s pp %d stage %d m %d: %s", c[i].kind,
                 c[i].pp, c[i].stage, c[i].m, buf);
        sp_sched_free(&s);
    }
}

static int find(const sp_schedule *s, sp_action_kind k, int mb) {
    for (int i = 0; i < s->n; i++)
        if (is(s, i, k, mb)) return i;
    return -1;
}

static void build4(sp_schedule st[4]) {
    sp_err err = {0};
    for (int s = 0; s < 4; s++) sp_sched_build("1f1b", 4, s, 4, &st[s], &err);
}

static void free4(sp_schedule st[4]) {
    for (int s = 0; s < 4; s++) sp_sched_free(&st[s]);
}

static void test_broken(tu_ctx *t) {
    sp_schedule st[4];
    sp_err err = {0};
    double span;

    /* stage 1 backs up micro-batch 3 where 0 belongs: it waits for the gradient of 3, which
     * needs the activation of 3 that stage 1 itself only sends later */
    build4(st);
    int b0 = find(&st[1], SP_ACT_BWD, 0), b3 = find(&st[1], SP_ACT_BWD, 3);
    for (int d = -1; d <= 1; d++) {
        int tmp = st[1].a[b0 + d].mb;
        st[1].a[b0 + d].mb = st[1].a[b3 + d].mb;
        st[1].a[b3 + d].mb = tmp;
    }
    int rc = sp_sched_simulate(st, 4, 4, &span, &err);
    tu_check(t,
             rc == SP_ERUNTIME && strstr(err.msg, "deadlock: ") &&
                 strstr(err.msg, "stage 1 waits for the gradient of micro-batch 3"),
             "a receive moved before its send: %s", err.msg);
    free4(st);

    /* two receives swapped on the last stage: it waits for activation 1 before running forward
     * 0, and the FWD of 0 then runs without its input */
    build4(st);
    int r0 = find(&st[3], SP_ACT_RECV_ACT, 0), r1 = find(&st[3], SP_ACT_RECV_ACT, 1);
    st[3].a[r0].mb = 1, st[3].a[r1].mb = 0;
    rc = sp_sched_simulate(st, 4, 4, &span, &err);
    tu_check(t, rc == SP_ERUNTIME && strstr(err.msg, "stage 3"), "swapped receives: %s", err.msg);
    free4(st);

    /* a dropped send: stage 2 never sends the activation of micro-batch 0 */
    build4(st);
    int i = find(&st[2], SP_ACT_SEND_ACT, 0);
    memmove(&st[2].a[i], &st[2].a[i + 1], (size_t)(st[2].n - i - 1) * sizeof(sp_action));
    st[2].n--;
    rc = sp_sched_simulate(st, 4, 4, &span, &err);
    tu_check(t,
             rc == SP_ERUNTIME && strstr(err.msg, "deadlock: ") &&
                 strstr(err.msg, "stage 3 waits for the activation of micro-batch 0"),
             "a dropped send: %s", err.msg);
    free4(st);

    /* a send before the compute that makes it */
    build4(st);
    i = find(&st[0], SP_ACT_FWD, 2);
    st[0].a[i].kind = SP_ACT_SEND_ACT, st[0].a[i + 1].kind = SP_ACT_FWD;
    rc = sp_sched_simulate(st, 4, 4, &span, &err);
    tu_check(t, rc == SP_ERUNTIME && strstr(err.msg, "not made"), "an early send: %s", err.msg);
    free4(st);

    /* a backward before its forward on the last stage (no messages involved) */
    build4(st);
    int f = find(&st[3], SP_ACT_FWD, 1), b = find(&st[3], SP_ACT_BWD, 0);
    st[3].a[b].mb = 1, st[3].a[f - 1].mb = 0, st[3].a[f].mb = 0;
    rc = sp_sched_simulate(st, 4, 4, &span, &err);
    tu_check(t, rc == SP_ERUNTIME, "a misplaced backward was not caught");
    free4(st);
}

static void test_args(tu_ctx *t) {
    sp_schedule s, st[2];
    sp_err err = {0};
    double span;
    tu_check(t,
             sp_sched_build("zigzag", 2, 0, 4, &s, &err) == SP_EINPUT && strstr(err.msg, "zigzag"),
             "unknown kind accepted");
    tu_check(t, sp_sched_build(NULL, 2, 0, 4, &s, &err) == SP_EINPUT, "no kind accepted");
    tu_check(t, sp_sched_build("1f1b", 0, 0, 4, &s, &err) == SP_EINPUT && strstr(err.msg, "0"),
             "pp 0 accepted");
    tu_check(t, sp_sched_build("1f1b", 2, 2, 4, &s, &err) == SP_EINPUT && strstr(err.msg, "2"),
             "stage 2 of 2 accepted");
    tu_check(t, sp_sched_build("1f1b", 2, -1, 4, &s, &err) == SP_EINPUT, "stage -1 accepted");
    tu_check(t, sp_sched_build("gpipe", 2, 0, 0, &s, &err) == SP_EINPUT && strstr(err.msg, "0"),
             "m 0 accepted");
    tu_check(t, sp_sched_simulate(st, 0, 4, &span, &err) == SP_EINPUT, "simulate pp 0 accepted");
    sp_sched_build("1f1b", 2, 0, 4, &st[0], &err);
    sp_sched_build("1f1b", 2, 0, 4, &st[1], &err); /* wrong: stage 0 twice */
    tu_check(t, sp_sched_simulate(st, 2, 4, &span, &err) == SP_EINPUT,
             "simulate accepted a wrong stage");
    tu_check(t, sp_sched_simulate(st, 2, 3, &span, &err) == SP_EINPUT,
             "simulate accepted a wrong micro-batch count");
    sp_sched_free(&st[0]), sp_sched_free(&st[1]);
}

int main(void) {
    tu_ctx t = {0};
    test_grid(&t);
    test_golden(&t);
    test_broken(&t);
    test_args(&t);
    return tu_finish(&t, "schedule");
}
