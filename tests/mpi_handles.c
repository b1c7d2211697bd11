/* No leaked MPI handles: every communicator the trainer splits is freed, and no request is left
 * pending after a step, for pp x dp = 2 x 2 and 4 x 1 (and the 1f1b and gpipe schedules).
 * Communicators are counted through the MPI profiling interface: this file defines
 * MPI_Comm_split and MPI_Comm_free, which the library's calls resolve to. */
#include "sprout/train.h"
#include "testutil.h"

#include <string.h>

static int g_split, g_freed;

int MPI_Comm_split(MPI_Comm comm, int color, int key, MPI_Comm *out) {
    int rc = PMPI_Comm_split(comm, color, key, out);
    if (*out != MPI_COMM_NULL) g_split++;
    return rc;
}

int MPI_Comm_free(MPI_Comm *comm) {
    g_freed++;
    return PMPI_Comm_free(comm);
}

static int pending(const sp_trainer *tr) {
    int n = 0;
    for (int i = 0; i < 2 * tr->nslots; i++) n += tr->req[i] != MPI_REQUEST_NULL;
    for (int i = 0; i < tr->n_red; i++) n += tr->red[i] != MPI_REQUEST_NULL;
    return n;
}

static void run(tu_ctx *t, int pp, const char *sched) {
    sp_config cfg;
    sp_cfg_defaults(&cfg);
    char set[64];
    snprintf(set, sizeof set, "parallel.pipeline=%d", pp);
    sp_err err = {0};
    sp_cfg_set(&cfg, set, &err);
    snprintf(set, sizeof set, "parallel.schedule=%s", sched);
    sp_cfg_set(&cfg, set, &err);
    cfg.model.n_layer = 4, cfg.model.d_model = 32, cfg.model.n_head = 2, cfg.model.seq_len = 16;
    cfg.train.global_batch = 8, cfg.train.micro_batch = 1;
    sp_trainer tr;
    g_split = g_freed = 0;
    int rc = sp_trainer_init(&tr, &cfg, 0, MPI_COMM_WORLD, &err);
    tu_check(t, rc == 0, "init pp %d: %s", pp, err.msg);
    for (int s = 0; s < 3 && !rc; s++) {
        double gn;
        sp_trainer_step(&tr, 1e-3f, &gn);
        tu_check(t, pending(&tr) == 0, "pp %d %s: %d requests pending after step %d", pp, sched,
                 pending(&tr), s);
    }
    sp_trainer_free(&tr);
    tu_check(t, g_split > 0 && g_split == g_freed, "pp %d %s: %d communicators split, %d freed", pp,
             sched, g_split, g_freed);
    sp_cfg_free(&cfg);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    tu_ctx t = {0};
    run(&t, 2, "1f1b");
    run(&t, 2, "gpipe");
    run(&t, 4, "1f1b");
    int bad = t.failures;
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    int res = rank == 0 ? tu_finish(&t, "mpi_handles") : (t.failures ? 1 : 0);
    MPI_Finalize();
    return bad ? 1 : res;
}
