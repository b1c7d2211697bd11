/* The redistribution engine: moves block and globals slabs (params, AdamW m and v, step counts)
 * from an old pp x dp layout to a new one along a block map.
 *
 * Every rank derives the whole plan from (old layout, new layout, map), which are the same
 * everywhere, so no plan is exchanged: for each new block j and each of its new holders, the
 * sender is sp_redist_source(old, map[j].src, holder). Each rank posts the receives and sends it
 * takes part in, straight from and into its arenas (no packing buffers: slabs are contiguous),
 * copies locally what it already holds, and waits for all of them. The step counts travel in one
 * small all-reduce instead of extra messages. */
#include "sprout/redist.h"

#include "sprout/grid.h"
#include "sprout/kernels.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

enum { ARENAS = 3 }; /* params, m, v: the grads are not state and are never moved */

/* Messages above INT_MAX elements cannot be described by an int count; slabs are split into
 * chunks of this many floats (8 GiB slabs are plausible for wide models). Chunks of one slab
 * share a tag: MPI's non-overtaking rule matches them in order. A test build shrinks the chunk
 * to exercise the split on small models. */
#ifdef SP_REDIST_CHUNK
#define CHUNK ((size_t)(SP_REDIST_CHUNK))
#else
#define CHUNK ((size_t)1 << 30)
#endif
_Static_assert(CHUNK <= INT_MAX, "a chunk must fit an int count");

static int stage_of(int n_layer, int pp, int b) {
    for (int s = 0; s < pp; s++) {
        int lo, hi;
        sp_grid_stage_range(n_layer, pp, s, &lo, &hi);
        if (b >= lo && b < hi) return s;
    }
    return -1;
}

static int holds_globals(const sp_layout *l, int rank) {
    int s = rank % l->pp;
    return s == 0 || s == l->pp - 1;
}

/* Source rule (deterministic, so every rank computes the same plan). Write a rank as
 * (stage t, replica q) of the old layout, rank = t + q*pp.
 *  - block b, held by stage s of every replica: a destination that is not a holder (t != s)
 *    takes replica (q + t + b) % dp. For each other stage t the dp destinations map one-to-one
 *    onto the dp replicas, so every replica sends the same number of copies of b instead of
 *    replica 0 sending them all, and consecutive blocks of one destination come from different
 *    replicas.
 *  - globals (b = -1), held by the first and the last stage of every replica (one entry per
 *    replica when pp = 1), listed replica by replica: the non-holders are the middle stages
 *    1..pp-2, numbered i = q*(pp-2) + t-1, and take holder i % (2*dp), a round robin.
 * Returns -1 for arguments outside the layout. */
int sp_redist_source(const sp_layout *old_l, int b, int dst) {
    int pp = old_l->pp, dp = old_l->dp;
    if (pp < 1 || dp < 1 || dst < 0 || dst / pp >= dp || b < -1 || b >= old_l->n_layer) return -1;
    int t = dst % pp, q = dst / pp;
    if (b < 0) {
        if (holds_globals(old_l, dst)) return dst;
        int h = (q * (pp - 2) + t - 1) % (2 * dp); /* pp > 2 here: middle stages exist */
        return (h / 2) * pp + (h % 2 ? pp - 1 : 0);
    }
    int s = stage_of(old_l->n_layer, pp, b);
    if (s < 0) return -1;
    if (t == s) return dst;
    return s + ((q + t + b) % dp) * pp;
}

static size_t nchunks(size_t n) {
    return n == 0 ? 0 : (n + CHUNK - 1) / CHUNK;
}

typedef struct plan {
    MPI_Comm comm;
    int me, tag_ub;
    size_t numel; /* floats per slab of the kind being moved */
    MPI_Request *req;
    int nreq;
    int posting;   /* 0: count the requests only; 1: post them */
    int narena;    /* 3: params, m and v; 1: params only (a weights-only model on either side) */
    int a0, a1;    /* the arenas this call moves: [a0, a1) of params, m, v, within narena */
    uint64_t sent; /* bytes this rank posted to others */
    int rc;
} plan;

/* Tags: 3*(j+1) + arena, the globals as j = -1. On an implementation whose MPI_TAG_UB is smaller
 * than the plan needs, the tag wraps around; matching stays correct because both sides post the
 * messages between a pair of ranks in the same (j, arena, chunk) order. */
static int tag_of(const plan *p, int j, int a) {
    long long t = 3LL * (j + 1) + a;
    return (int)(t % ((long long)p->tag_ub + 1));
}

static void move(plan *p, int j, int src, int dst, const sp_model *old, int b_old, sp_model *nw,
                 int b_new) {
    if (src != p->me && dst != p->me) return;
    const float *from[ARENAS] = {0};
    float *to[ARENAS] = {0};
    int a1 = p->a1 < p->narena ? p->a1 : p->narena;
    if (src == p->me) {
        float *arena[ARENAS] = {old->params, old->m, old->v};
        for (int a = p->a0; a < a1; a++)
            from[a] =
                b_old < 0 ? sp_model_globals(old, arena[a]) : sp_model_block(old, arena[a], b_old);
    }
    if (dst == p->me) {
        float *arena[ARENAS] = {nw->params, nw->m, nw->v};
        for (int a = p->a0; a < a1; a++)
            to[a] =
                b_new < 0 ? sp_model_globals(nw, arena[a]) : sp_model_block(nw, arena[a], b_new);
    }
    size_t nc = nchunks(p->numel);
    for (int a = p->a0; a < a1; a++) {
        if (src == dst) {
            /* a stage that keeps its arenas moves slabs onto themselves */
            if (p->posting && to[a] != from[a]) memcpy(to[a], from[a], p->numel * sizeof(float));
            continue;
        }
        for (size_t c = 0; c < nc; c++) {
            if (!p->posting) {
                p->nreq++;
                continue;
            }
            size_t off = c * CHUNK, n = p->numel - off < CHUNK ? p->numel - off : CHUNK;
            MPI_Request *r = &p->req[p->nreq];
            int rc =
                src == p->me
                    ? MPI_Isend(from[a] + off, (int)n, MPI_FLOAT, dst, tag_of(p, j, a), p->comm, r)
                    : MPI_Irecv(to[a] + off, (int)n, MPI_FLOAT, src, tag_of(p, j, a), p->comm, r);
            if (rc != MPI_SUCCESS) {
                p->rc = rc;
                return;
            }
            p->nreq++;
            if (src == p->me) p->sent += n * sizeof(float);
        }
    }
}

/* Walks the whole plan in one fixed order (globals, then new blocks ascending, holders by
 * replica), so that the counting pass and the posting pass agree and every pair of ranks posts
 * its messages in the same order on both sides. */
static void walk(plan *p, const sp_model *old, const sp_layout *ol, sp_model *nw,
                 const sp_layout *nl, const sp_block_map *map) {
    p->numel = sp_spec_global_numel(&nw->spec);
    for (int k = 0; k < nl->dp && !p->rc; k++) {
        int ends[2] = {k * nl->pp, k * nl->pp + nl->pp - 1};
        for (int e = 0; e < (nl->pp > 1 ? 2 : 1); e++)
            move(p, -1, sp_redist_source(ol, -1, ends[e]), ends[e], old, -1, nw, -1);
    }
    p->numel = nw->block_numel;
    for (int j = 0; j < nl->n_layer && !p->rc; j++) {
        int src = map->b[j].src;
        if (src < 0) continue;
        int s = stage_of(nl->n_layer, nl->pp, j);
        for (int k = 0; k < nl->dp && !p->rc; k++) {
            int dst = s + k * nl->pp;
            move(p, j, sp_redist_source(ol, src, dst), dst, old, src, nw, j);
        }
    }
}

/* local checks; identical layouts and maps on every rank make most of them agree everywhere */
static int check(const sp_model *old, const sp_layout *ol, const sp_model *nw, const sp_layout *nl,
                 const sp_block_map *map, int world, int me, sp_err *err) {
    const char *w = "sp_redist";
    if (ol->pp < 1 || ol->dp < 1 || nl->pp < 1 || nl->dp < 1)
        return sp_err_set(err, SP_EINPUT, "%s: layout %dx%d -> %dx%d is not a grid", w, ol->pp,
                          ol->dp, nl->pp, nl->dp);
    if (ol->pp * ol->dp != world || nl->pp * nl->dp != world)
        return sp_err_set(err, SP_EINPUT,
                          "%s: layouts %dx%d -> %dx%d do not both cover the %d ranks", w, ol->pp,
                          ol->dp, nl->pp, nl->dp, world);
    if (map->n_old != ol->n_layer || map->n_new != nl->n_layer)
        return sp_err_set(err, SP_EINPUT,
                          "%s: block map %d -> %d blocks does not match layouts %d -> %d blocks", w,
                          map->n_old, map->n_new, ol->n_layer, nl->n_layer);
    if (old->block_numel != nw->block_numel ||
        sp_spec_global_numel(&old->spec) != sp_spec_global_numel(&nw->spec))
        return sp_err_set(err, SP_EINPUT,
                          "%s: widths differ (block slab %zu -> %zu floats); redistribution "
                          "only moves slabs of equal width",
                          w, old->block_numel, nw->block_numel);
    for (int j = 0; j < map->n_new; j++)
        if (map->b[j].src < -1 || map->b[j].src >= map->n_old)
            return sp_err_set(err, SP_EINPUT, "%s: block map entry %d names old block %d of %d", w,
                              j, map->b[j].src, map->n_old);
    int lo, hi;
    sp_grid_stage_range(ol->n_layer, ol->pp, me % ol->pp, &lo, &hi);
    if (old->lo != lo || old->hi != hi || (old->global_numel != 0) != holds_globals(ol, me))
        return sp_err_set(err, SP_EINPUT,
                          "%s: rank %d holds old blocks [%d,%d)%s, layout %dx%d says [%d,%d)%s", w,
                          me, old->lo, old->hi, old->global_numel ? " + globals" : "", ol->pp,
                          ol->dp, lo, hi, holds_globals(ol, me) ? " + globals" : "");
    sp_grid_stage_range(nl->n_layer, nl->pp, me % nl->pp, &lo, &hi);
    if (nw->lo != lo || nw->hi != hi || (nw->global_numel != 0) != holds_globals(nl, me))
        return sp_err_set(err, SP_EINPUT,
                          "%s: rank %d holds new blocks [%d,%d)%s, layout %dx%d says [%d,%d)%s", w,
                          me, nw->lo, nw->hi, nw->global_numel ? " + globals" : "", nl->pp, nl->dp,
                          lo, hi, holds_globals(nl, me) ? " + globals" : "");
    return SP_OK;
}

/* moves the arenas [a0, a1) of params, m, v */
static int redist(const sp_model *old, const sp_layout *old_l, sp_model *dst,
                  const sp_layout *new_l, const sp_block_map *map, int a0, int a1, MPI_Comm comm,
                  uint64_t *bytes_sent, sp_err *err) {
    int world, me;
    MPI_Comm_size(comm, &world);
    MPI_Comm_rank(comm, &me);
    plan p = {.comm = comm, .me = me, .tag_ub = 32767, .narena = ARENAS, .a0 = a0, .a1 = a1};
    /* the moments move only when both sides have them (in a chain of one-arena moves, the other
     * arenas may already be recycled); every rank must count the same messages, so the ranks
     * agree on it first */
    const float *oa[ARENAS] = {old->params, old->m, old->v},
                *da[ARENAS] = {dst->params, dst->m, dst->v};
    int na = ARENAS;
    for (int a = a0 > 1 ? a0 : 1; a < a1; a++)
        if (!oa[a] || !da[a]) na = 1;
    if (MPI_Allreduce(MPI_IN_PLACE, &na, 1, MPI_INT, MPI_MIN, comm) == MPI_SUCCESS) p.narena = na;
    int flag = 0, *ub = NULL;
    if (MPI_Comm_get_attr(comm, MPI_TAG_UB, &ub, &flag) == MPI_SUCCESS && flag && *ub > 0)
        p.tag_ub = *ub;

    /* A rank that fails here must not leave the others waiting for its messages, so the local
     * verdicts are agreed on before anything is posted. */
    int rc = check(old, old_l, dst, new_l, map, world, me, err);
    uint64_t *steps = NULL;
    if (!rc) {
        walk(&p, old, old_l, dst, new_l, map); /* counting pass */
        p.req = malloc((size_t)(p.nreq ? p.nreq : 1) * sizeof *p.req);
        steps = calloc((size_t)old_l->n_layer + 1, sizeof *steps);
        if (!p.req || !steps) rc = sp_err_set(err, SP_ERUNTIME, "sp_redist: out of memory");
    }
    int any = rc;
    if (MPI_Allreduce(MPI_IN_PLACE, &any, 1, MPI_INT, MPI_MAX, comm) != MPI_SUCCESS && !rc)
        rc = any = sp_err_set(err, SP_ERUNTIME, "sp_redist: MPI_Allreduce failed");
    if (any) {
        free(p.req);
        free(steps);
        return rc ? rc
                  : sp_err_set(err, any,
                               "sp_redist: another rank could not take part (its error says why)");
    }

    /* Step counts: replica 0 of the old layout contributes the counts it holds (replicas hold the
     * same ones), an all-reduce gives everyone all n_old + 1 of them. */
    if (me / old_l->pp == 0) {
        if (old->global_numel) steps[0] = old->steps[0];
        for (int b = old->lo; b < old->hi; b++) steps[1 + b] = old->steps[1 + b - old->lo];
    }
    rc = MPI_Allreduce(MPI_IN_PLACE, steps, old_l->n_layer + 1, MPI_UINT64_T, MPI_MAX, comm);

    p.posting = 1;
    p.nreq = 0;
    if (rc == MPI_SUCCESS) walk(&p, old, old_l, dst, new_l, map);
    if (p.rc) {
        /* only reachable with MPI_ERRORS_RETURN: retire what was posted, leak nothing */
        for (int i = 0; i < p.nreq; i++) MPI_Cancel(&p.req[i]);
    }
    int wrc = MPI_Waitall(p.nreq, p.req, MPI_STATUSES_IGNORE);
    free(p.req);
    if (rc != MPI_SUCCESS || p.rc || wrc != MPI_SUCCESS) {
        free(steps);
        return sp_err_set(err, SP_ERUNTIME, "sp_redist: MPI point-to-point transfer failed");
    }

    if (bytes_sent) *bytes_sent += p.sent;
    if (dst->global_numel) dst->steps[0] = steps[0];
    for (int j = dst->lo; j < dst->hi; j++)
        if (map->b[j].src >= 0) dst->steps[1 + j - dst->lo] = steps[1 + map->b[j].src];
    free(steps);
    return SP_OK;
}

static int multi_source(const sp_block_map *map) {
    int n = 0;
    for (int j = 0; j < map->n_new; j++)
        if (map->b[j].n_more > n) n = map->b[j].n_more;
    return n;
}

/* pass p of a map with several sources per entry: source p of each entry (src itself for p = 0),
 * or none for entries with fewer */
static void map_pass(const sp_block_map *map, int p, sp_block_map *out) {
    for (int j = 0; j < map->n_new; j++) {
        const sp_block_src *e = &map->b[j];
        int src = p == 0 ? e->src : p <= e->n_more ? e->more[p - 1] : -1;
        out->b[j] = sp_block_one(src, SP_XF_COPY);
    }
}

/* Entries with several sources: one move per source, each into a stage of dst's shape (the
 * first into dst itself), the later ones added onto dst block by block in source order, then
 * each summed block (params, m, v) times its scale. The step count is the first source's. */
static int redist_sum(const sp_model *old, const sp_layout *old_l, sp_model *dst,
                      const sp_layout *new_l, const sp_block_map *map, int passes, MPI_Comm comm,
                      uint64_t *bytes_sent, sp_err *err) {
    sp_block_map pm = {map->n_old, map->n_new,
                       calloc((size_t)(map->n_new ? map->n_new : 1), sizeof *pm.b)};
    sp_model tmp;
    memset(&tmp, 0, sizeof tmp);
    int rc = pm.b ? SP_OK : sp_err_set(err, SP_ERUNTIME, "sp_redist: out of memory");
    /* every rank creates the same temporaries and runs the same passes; a failure is agreed on
     * inside the next redist's checks */
    if (!rc)
        rc =
            sp_model_create(&tmp, &dst->spec, dst->lo, dst->hi, dst->has_embed, dst->has_head, err);
    for (int p = 0; p <= passes && !rc; p++) {
        map_pass(map, p, &pm);
        sp_model *into = p == 0 ? dst : &tmp;
        rc = redist(old, old_l, into, new_l, &pm, 0, ARENAS, comm, bytes_sent, err);
        float *d[ARENAS] = {dst->params, dst->m, dst->v}, *s[ARENAS] = {tmp.params, tmp.m, tmp.v};
        for (int j = dst->lo; j < dst->hi && !rc && p > 0; j++) {
            if (map->b[j].n_more < p) continue;
            for (int a = 0; a < ARENAS; a++) {
                float *x = sp_model_block(dst, d[a], j);
                const float *y = sp_model_block(&tmp, s[a], j);
                for (size_t i = 0; i < dst->block_numel; i++) x[i] += y[i];
            }
        }
    }
    for (int j = dst->lo; j < dst->hi && !rc; j++) {
        float *d[ARENAS] = {dst->params, dst->m, dst->v};
        if (map->b[j].n_more > 0)
            for (int a = 0; a < ARENAS; a++)
                sp_scale(sp_model_block(dst, d[a], j), dst->block_numel, map->b[j].scale);
    }
    sp_model_free(&tmp);
    free(pm.b);
    return rc;
}

int sp_redist(const sp_model *old, const sp_layout *old_l, sp_model *dst, const sp_layout *new_l,
              const sp_block_map *map, MPI_Comm comm, uint64_t *bytes_sent, sp_err *err) {
    int passes = multi_source(map);
    if (passes > 0) return redist_sum(old, old_l, dst, new_l, map, passes, comm, bytes_sent, err);
    return redist(old, old_l, dst, new_l, map, 0, ARENAS, comm, bytes_sent, err);
}

int sp_redist_arena(const sp_model *old, const sp_layout *old_l, sp_model *dst,
                    const sp_layout *new_l, const sp_block_map *map, int arena, MPI_Comm comm,
                    uint64_t *bytes_sent, sp_err *err) {
    int a = arena == SP_ARENA_PARAMS ? 0 : arena == SP_ARENA_M ? 1 : arena == SP_ARENA_V ? 2 : -1;
    if (a < 0) return sp_err_set(err, SP_EINPUT, "sp_redist_arena: arena %d is not moved", arena);
    /* summing sources needs the three arenas of a second stage at once */
    if (multi_source(map))
        return sp_err_set(err, SP_EINPUT,
                          "sp_redist_arena: a map with several sources per block moves through "
                          "sp_redist");
    return redist(old, old_l, dst, new_l, map, a, a + 1, comm, bytes_sent, err);
}
