/* Distributed growth equals single-rank growth bit for bit, AdamW moments and step counts
 * included (design §1): every rank builds its stage of an old pp x dp layout, the redistribution
 * engine moves the source slabs to a new layout along the growth operator's block map, and the
 * operator's local transforms run. Rank 0 computes the reference twice on one process: through
 * the same engine on MPI_COMM_SELF, and as a plain memcpy permutation of the slabs (the oracle);
 * both must agree, and every rank's new slabs must equal the oracle's.
 *
 *   mpi_growth OLD_PP NEW_PP               every op x {2 -> 8, 4 -> 8}, plus identity maps
 *   mpi_growth OLD_PP NEW_PP OP FACTOR N   one case
 *
 * Requests are counted through the MPI profiling interface (as in mpi_handles.c): every
 * MPI_Isend/MPI_Irecv the engine posts must be completed by an MPI_Waitall. */
#include "sprout/grid.h"
#include "sprout/growth.h"
#include "sprout/redist.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static long g_posted, g_waited, g_left;

int MPI_Isend(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm,
              MPI_Request *req) {
    g_posted++;
    return PMPI_Isend(buf, count, dt, dest, tag, comm, req);
}

int MPI_Irecv(void *buf, int count, MPI_Datatype dt, int source, int tag, MPI_Comm comm,
              MPI_Request *req) {
    g_posted++;
    return PMPI_Irecv(buf, count, dt, source, tag, comm, req);
}

int MPI_Waitall(int n, MPI_Request reqs[], MPI_Status *st) {
    for (int i = 0; i < n; i++) g_waited += reqs[i] != MPI_REQUEST_NULL;
    int rc = PMPI_Waitall(n, reqs, st);
    for (int i = 0; i < n; i++) g_left += reqs[i] != MPI_REQUEST_NULL;
    return rc;
}

static const uint64_t SEED = 1234;
static const char *ARENA[3] = {"params", "m", "v"};

static sp_spec base_spec(int n_layer) {
    sp_spec s = {.vocab = 64, .seq_len = 16, .d_model = 32, .n_head = 4, .d_ff = 128};
    s.n_layer = n_layer;
    return s;
}

static int stage_create(sp_model *m, const sp_layout *l, int rank, sp_err *err) {
    sp_spec s = base_spec(l->n_layer);
    int st = rank % l->pp, lo, hi;
    sp_grid_stage_range(l->n_layer, l->pp, st, &lo, &hi);
    return sp_model_create(m, &s, lo, hi, st == 0, st == l->pp - 1, err);
}

static void fill_tensor(float *m, float *v, const sp_tensor_info *t, uint64_t id) {
    sp_rng_normal_fill(m + t->offset, t->numel, 1.0f, SEED, SP_RNG_TEST, id, 0);
    sp_rng_normal_fill(v + t->offset, t->numel, 1.0f, SEED, SP_RNG_TEST, id | (1ull << 40), 0);
    for (size_t i = 0; i < t->numel; i++) v[t->offset + i] = fabsf(v[t->offset + i]);
}

/* weights, moments and step counts that depend only on the global block index */
static void fill_state(sp_model *m) {
    sp_model_init(m, SEED);
    for (int b = m->lo; b < m->hi; b++) {
        for (int j = 0; j < SP_BLOCK_NT; j++)
            fill_tensor(sp_model_block(m, m->m, b), sp_model_block(m, m->v, b), &m->bt[j],
                        sp_model_tensor_id(b, j));
        m->steps[1 + b - m->lo] = 100 + (uint64_t)b;
    }
    if (!m->global_numel) return;
    for (int j = 0; j < SP_GLOBAL_NT; j++)
        fill_tensor(m->m, m->v, &m->gt[j], sp_model_tensor_id(-1, j));
    m->steps[0] = 7;
}

/* what the new arenas hold before the engine runs: any slab it forgets shows up */
static void poison(sp_model *m, int rank) {
    float *a[3] = {m->params, m->m, m->v};
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < m->numel; i++) a[k][i] = -1000.0f - (float)rank;
    for (int i = 0; i <= m->hi - m->lo; i++) m->steps[i] = 0xdead0000u + (uint64_t)rank;
}

/* the oracle: new slab j is old slab map[j].src, copied by hand; with several sources, their
 * sum in map order times the entry's scale */
static void permute(const sp_model *old, sp_model *nw, const sp_block_map *map) {
    float *oa[3] = {old->params, old->m, old->v}, *na[3] = {nw->params, nw->m, nw->v};
    for (int k = 0; k < 3; k++) {
        memcpy(na[k], oa[k], old->global_numel * sizeof(float));
        for (int j = 0; j < map->n_new; j++) {
            const sp_block_src *e = &map->b[j];
            if (e->src < 0) continue;
            float *d = sp_model_block(nw, na[k], j);
            memcpy(d, sp_model_block(old, oa[k], e->src), old->block_numel * sizeof(float));
            for (int p = 0; p < e->n_more; p++) {
                const float *x = sp_model_block(old, oa[k], e->more[p]);
                for (size_t i = 0; i < old->block_numel; i++) d[i] += x[i];
            }
            for (size_t i = 0; e->n_more && i < old->block_numel; i++) d[i] *= e->scale;
        }
    }
    nw->steps[0] = old->steps[0];
    for (int j = 0; j < map->n_new; j++)
        if (map->b[j].src >= 0) nw->steps[1 + j] = old->steps[1 + map->b[j].src];
}

/* compares one slab (block j, or the globals when j < 0) of `got` with `want` */
static void cmp_slab(tu_ctx *t, const char *what, int rank, const sp_model *got,
                     const sp_model *want, int j) {
    float *ga[3] = {got->params, got->m, got->v}, *wa[3] = {want->params, want->m, want->v};
    size_t n = j < 0 ? got->global_numel : got->block_numel;
    for (int k = 0; k < 3; k++) {
        const float *g = j < 0 ? ga[k] : sp_model_block(got, ga[k], j);
        const float *w = j < 0 ? wa[k] : sp_model_block(want, wa[k], j);
        if (!memcmp(g, w, n * sizeof(float))) {
            t->checks++;
            continue;
        }
        size_t i = 0;
        while (i < n && !memcmp(g + i, w + i, sizeof(float))) i++;
        char slab[32];
        snprintf(slab, sizeof slab, j < 0 ? "globals" : "block %d", j);
        tu_check(t, 0, "%s: rank %d %s %s differs at element %zu: got %a, want %a", what, rank,
                 slab, ARENA[k], i, g[i], w[i]);
    }
    uint64_t gs = got->steps[j < 0 ? 0 : 1 + j - got->lo];
    uint64_t ws = want->steps[j < 0 ? 0 : 1 + j - want->lo];
    tu_check(t, gs == ws, "%s: rank %d %s %d step count %llu, want %llu", what, rank,
             j < 0 ? "globals" : "block", j, (unsigned long long)gs, (unsigned long long)ws);
    if (j >= 0)
        tu_check(t, got->plan.scale[j] == want->plan.scale[j],
                 "%s: rank %d block %d branch scale %g, want %g", what, rank, j, got->plan.scale[j],
                 want->plan.scale[j]);
}

static void cmp_stage(tu_ctx *t, const char *what, int rank, const sp_model *got,
                      const sp_model *want) {
    if (got->global_numel) cmp_slab(t, what, rank, got, want, -1);
    for (int j = got->lo; j < got->hi; j++) cmp_slab(t, what, rank, got, want, j);
}

/* The source rule: a holder of the slab, the destination itself when it holds one, and the
 * sending spread evenly: no holder serves more than its share ceil(non-holders / holders). */
static void check_sources(tu_ctx *t, const sp_layout *l) {
    int W = l->pp * l->dp, *load = calloc((size_t)W, sizeof *load);
    for (int b = -1; b < l->n_layer; b++) {
        int outsiders = 0, holders = 0, worst = 0;
        memset(load, 0, (size_t)W * sizeof *load);
        for (int dst = 0; dst < W; dst++) {
            int src = sp_redist_source(l, b, dst), lo, hi;
            sp_grid_stage_range(l->n_layer, l->pp, src % l->pp, &lo, &hi);
            int s = src % l->pp;
            int ok =
                src >= 0 && src < W && (b < 0 ? (s == 0 || s == l->pp - 1) : (b >= lo && b < hi));
            tu_check(t, ok, "layout %dx%d: source %d of block %d for rank %d holds no copy", l->pp,
                     l->dp, src, b, dst);
            if (!ok) continue;
            if (src == dst) {
                holders++;
            } else {
                outsiders++;
                if (++load[src] > worst) worst = load[src];
            }
        }
        int share = holders ? (outsiders + holders - 1) / holders : 0;
        tu_check(t, worst <= share,
                 "layout %dx%d: a holder of block %d sends %d copies, its share is %d", l->pp,
                 l->dp, b, worst, share);
        tu_check(t, holders == (b < 0 ? (l->pp > 1 ? 2 : 1) : 1) * l->dp,
                 "layout %dx%d: %d ranks keep their own copy of block %d", l->pp, l->dp, holders,
                 b);
    }
    free(load);
    tu_check(t, sp_redist_source(l, l->n_layer, 0) == -1 && sp_redist_source(l, 0, W) == -1,
             "layout %dx%d: out-of-range arguments must give -1", l->pp, l->dp);
}

/* What rank `me` must send in a redistribution, counted from sp_redist_source alone: three
 * arenas of every (new block, source, holder) triple and of every globals holder (once per
 * source: the move runs once per source of the widest entry) whose source is `me` and not the
 * holder itself. */
static uint64_t expected_bytes_sent(const sp_layout *ol, const sp_layout *nl,
                                    const sp_block_map *map, const sp_spec *spec,
                                    size_t block_numel, int me) {
    uint64_t n = 0, slab = 3 * sizeof(float);
    int passes = 1;
    for (int j = 0; j < map->n_new; j++)
        if (map->b[j].n_more + 1 > passes) passes = map->b[j].n_more + 1;
    for (int k = 0; k < nl->dp * passes; k++) {
        int r = k % nl->dp, ends[2] = {r * nl->pp, r * nl->pp + nl->pp - 1};
        for (int e = 0; e < (nl->pp > 1 ? 2 : 1); e++) {
            int src = sp_redist_source(ol, -1, ends[e]);
            if (src == me && src != ends[e]) n += slab * sp_spec_global_numel(spec);
        }
    }
    for (int s = 0; s < nl->pp; s++) {
        int lo, hi;
        sp_grid_stage_range(nl->n_layer, nl->pp, s, &lo, &hi);
        for (int j = lo; j < hi; j++)
            for (int p = 0; p <= map->b[j].n_more; p++)
                for (int k = 0; k < nl->dp && map->b[j].src >= 0; k++) {
                    int old_b = p ? map->b[j].more[p - 1] : map->b[j].src;
                    int dst = s + k * nl->pp, src = sp_redist_source(ol, old_b, dst);
                    if (src == me && src != dst) n += slab * block_numel;
                }
    }
    return n;
}

typedef struct gcase {
    const char *op;
    int factor, n_old;
} gcase;

static void run_case(tu_ctx *t, int old_pp, int new_pp, const gcase *c, int rank, int W) {
    char what[128];
    snprintf(what, sizeof what, "%s x%d, %d blocks, %dx%d -> %dx%d", c->op, c->factor, c->n_old,
             old_pp, W / old_pp, new_pp, W / new_pp);
    sp_err err = {0};
    sp_block_map map;
    if (sp_grow_plan(c->op, c->n_old, c->factor, &map, &err)) {
        tu_check(t, 0, "%s: plan: %s", what, err.msg);
        return;
    }
    sp_layout ol = {old_pp, W / old_pp, map.n_old}, nl = {new_pp, W / new_pp, map.n_new};
    sp_layout o1 = {1, 1, map.n_old}, n1 = {1, 1, map.n_new};
    sp_model old, nw, ref, eng;
    memset(&ref, 0, sizeof ref), memset(&eng, 0, sizeof eng);
    int rc = stage_create(&old, &ol, rank, &err);
    rc = rc ? rc : stage_create(&nw, &nl, rank, &err);
    rc = rc ? rc : stage_create(&ref, &n1, 0, &err);
    if (rc) {
        tu_check(t, 0, "%s: create: %s", what, err.msg);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    fill_state(&old);
    poison(&nw, rank + 1);
    uint64_t sent = 0;
    rc = sp_redist(&old, &ol, &nw, &nl, &map, MPI_COMM_WORLD, &sent, &err);
    tu_check(t, rc == SP_OK, "%s: sp_redist: %s", what, err.msg);
    uint64_t want = expected_bytes_sent(&ol, &nl, &map, &nw.spec, nw.block_numel, rank);
    tu_check(t, sent == want, "%s: rank %d reports %llu bytes sent, the plan says %llu", what, rank,
             (unsigned long long)sent, (unsigned long long)want);
    sp_grow_transform(&nw, &map, SEED, 1);

    if (rank == 0) {
        sp_model o_full;
        rc = stage_create(&o_full, &o1, 0, &err);
        rc = rc ? rc : stage_create(&eng, &n1, 0, &err);
        if (rc) {
            tu_check(t, 0, "%s: create: %s", what, err.msg);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        fill_state(&o_full);
        poison(&ref, 0), poison(&eng, 0);
        permute(&o_full, &ref, &map);
        sp_grow_transform(&ref, &map, SEED, 1);
        rc = sp_redist(&o_full, &o1, &eng, &n1, &map, MPI_COMM_SELF, NULL, &err);
        tu_check(t, rc == SP_OK, "%s: sp_redist on one rank: %s", what, err.msg);
        sp_grow_transform(&eng, &map, SEED, 1);
        char w1[160];
        snprintf(w1, sizeof w1, "%s, engine on one rank vs plain permutation", what);
        cmp_stage(t, w1, 0, &eng, &ref);
        sp_model_free(&o_full);
        sp_model_free(&eng);
    }
    /* the reference goes to every rank, which compares the slabs it holds */
    MPI_Bcast(ref.params, (int)ref.numel, MPI_FLOAT, 0, MPI_COMM_WORLD);
    MPI_Bcast(ref.m, (int)ref.numel, MPI_FLOAT, 0, MPI_COMM_WORLD);
    MPI_Bcast(ref.v, (int)ref.numel, MPI_FLOAT, 0, MPI_COMM_WORLD);
    MPI_Bcast(ref.steps, map.n_new + 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    MPI_Bcast(ref.plan.scale, map.n_new, MPI_FLOAT, 0, MPI_COMM_WORLD);
    cmp_stage(t, what, rank, &nw, &ref);

    sp_model_free(&ref);
    sp_model_free(&nw);
    sp_model_free(&old);
    sp_grow_map_free(&map);
}

/* Bad inputs come back as SP_EINPUT on every rank, also when only one rank's are wrong, without
 * posting a message (no rank may be left waiting). */
static void run_bad_inputs(tu_ctx *t, int rank, int W) {
    sp_err err = {0};
    sp_block_map map;
    if (sp_grow_plan("stack", 2, 2, &map, &err)) {
        tu_check(t, 0, "bad inputs: plan: %s", err.msg);
        return;
    }
    sp_layout ol = {1, W, 2}, nl = {W, 1, 4};
    sp_model old, nw, wide;
    int rc = stage_create(&old, &ol, rank, &err);
    rc = rc ? rc : stage_create(&nw, &nl, rank, &err);
    sp_spec ws = base_spec(nw.spec.n_layer);
    ws.d_model = 64;
    rc = rc ? rc : sp_model_create(&wide, &ws, nw.lo, nw.hi, nw.has_embed, nw.has_head, &err);
    if (rc) {
        tu_check(t, 0, "bad inputs: create: %s", err.msg);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    long posted = g_posted;
    sp_layout big = {1, W + 1, 2};
    rc = sp_redist(&old, &big, &nw, &nl, &map, MPI_COMM_WORLD, NULL, &err);
    tu_check(t, rc == SP_EINPUT && strstr(err.msg, "ranks"), "world mismatch: rc %d '%s'", rc,
             err.msg);
    rc = sp_redist(&old, &ol, &wide, &nl, &map, MPI_COMM_WORLD, NULL, &err);
    tu_check(t, rc == SP_EINPUT && strstr(err.msg, "widths"), "width mismatch: rc %d '%s'", rc,
             err.msg);
    map.n_old = 3;
    rc = sp_redist(&old, &ol, &nw, &nl, &map, MPI_COMM_WORLD, NULL, &err);
    tu_check(t, rc == SP_EINPUT && strstr(err.msg, "block map"), "map mismatch: rc %d '%s'", rc,
             err.msg);
    map.n_old = 2;
    /* only the last rank passes a stage that its layout does not give it */
    rc = sp_redist(&old, &ol, rank == W - 1 ? &old : &nw, &nl, &map, MPI_COMM_WORLD, NULL, &err);
    tu_check(t, rc == SP_EINPUT, "one rank's wrong stage: rc %d '%s'", rc, err.msg);
    tu_check(t, g_posted == posted, "bad inputs: %ld messages posted", g_posted - posted);
    sp_model_free(&wide);
    sp_model_free(&nw);
    sp_model_free(&old);
    sp_grow_map_free(&map);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, W;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &W);
    tu_ctx t = {0};
    if (argc != 3 && argc != 6) {
        if (!rank) fprintf(stderr, "usage: mpi_growth OLD_PP NEW_PP [OP FACTOR N_OLD]\n");
        MPI_Finalize();
        return 2;
    }
    int old_pp = atoi(argv[1]), new_pp = atoi(argv[2]);
    if (old_pp < 1 || new_pp < 1 || W % old_pp || W % new_pp) {
        if (!rank)
            fprintf(stderr, "mpi_growth: pp %d and %d must divide %d ranks\n", old_pp, new_pp, W);
        MPI_Finalize();
        return 2;
    }
    gcase all[] = {
        {"stack", 4, 2},           {"stack", 2, 4},  {"interpolate", 4, 2},
        {"interpolate", 2, 4},     {"zero", 4, 2},   {"zero", 2, 4},
        {"random", 4, 2},          {"random", 2, 4}, {"coalesce_depth", 2, 8},
        {"coalesce_depth", 4, 16}, /* several sources per block */
        {"stack", 1, 4},           /* identity map: pipeline re-balancing */
        {"stack", 1, 5},           /* uneven stages */
    };
    gcase one = {argc == 6 ? argv[3] : "", argc == 6 ? atoi(argv[4]) : 0,
                 argc == 6 ? atoi(argv[5]) : 0};
    int n = argc == 6 ? 1 : (int)(sizeof all / sizeof *all);
    for (int i = 0; i < n; i++) {
        const gcase *c = argc == 6 ? &one : &all[i];
        run_case(&t, old_pp, new_pp, c, rank, W);
        sp_layout ol = {old_pp, W / old_pp, c->n_old};
        if (!rank) check_sources(&t, &ol);
    }
    run_bad_inputs(&t, rank, W);
    tu_check(&t, g_posted == g_waited && g_left == 0,
             "rank %d: %ld requests posted, %ld waited for, %ld still pending", rank, g_posted,
             g_waited, g_left);
    long msgs = g_posted;
    MPI_Allreduce(MPI_IN_PLACE, &msgs, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (!rank)
        printf("mpi_growth %dx%d -> %dx%d: %ld point-to-point requests\n", old_pp, W / old_pp,
               new_pp, W / new_pp, msgs);
    int bad = t.failures;
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    int res = rank == 0 ? tu_finish(&t, "mpi_growth") : (t.failures ? 1 : 0);
    MPI_Finalize();
    return bad ? 1 : res;
}
