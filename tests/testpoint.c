/* The test points of include/sprout/testpoint.h, linked only into the sprout_points test binary.
 *
 * SPROUT_TEST_POINT_DIR=DIR and SPROUT_TEST_HOLD=ITEM[,ITEM...], each ITEM NAME[=N][@RANK]. At a
 * point that matches an item (NAME, and N for numbered points) every rank writes its pid to
 * DIR/NAME.RANK; the ranks that match RANK (all, without @RANK) then wait there until
 * DIR/release.NAME exists, and write DIR/NAME.RANK.sig with the number as soon as a stop signal
 * has been caught. A test thus knows where each process is when it sends a signal, and that the
 * signal has arrived before it lets the process go on: nothing depends on timing. The rank is
 * Open MPI's OMPI_COMM_WORLD_RANK, so that a point before MPI_Init has one too. */
#include "sprout/testpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* the whole file at once (temp + rename): the test never reads half a number */
static void put(const char *path, int v) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fprintf(f, "%d\n", v);
    fclose(f);
    rename(tmp, path);
}

/* the @RANK of the item of `hold` that names point `here`: -1 all ranks, -2 no such item */
static int held_rank(const char *hold, const char *here) {
    char items[256];
    snprintf(items, sizeof items, "%s", hold);
    for (char *save = NULL, *it = strtok_r(items, ",", &save); it;
         it = strtok_r(NULL, ",", &save)) {
        char *at = strchr(it, '@');
        if (at) *at++ = 0;
        if (!strcmp(it, here)) return at ? atoi(at) : -1;
    }
    return -2;
}

void sp_test_point(const char *name, int64_t n) {
    const char *dir = getenv("SPROUT_TEST_POINT_DIR"), *hold = getenv("SPROUT_TEST_HOLD");
    if (!dir || !hold) return;
    char here[64];
    if (n >= 0)
        snprintf(here, sizeof here, "%s=%lld", name, (long long)n);
    else
        snprintf(here, sizeof here, "%s", name);
    int who = held_rank(hold, here);
    if (who == -2) return;
    const char *r = getenv("OMPI_COMM_WORLD_RANK");
    int rank = r ? atoi(r) : 0;
    char path[4096], sig[4200];
    snprintf(path, sizeof path, "%s/%s.%d", dir, name, rank);
    snprintf(sig, sizeof sig, "%s.sig", path);
    put(path, (int)getpid());
    if (who != -1 && who != rank) return;
    snprintf(path, sizeof path, "%s/release.%s", dir, name);
    struct stat st;
    int told = 0;
    /* a signal cuts a sleep short; the loop just looks again */
    for (struct timespec ts = {0, 10 * 1000 * 1000}; stat(path, &st); nanosleep(&ts, NULL))
        if (!told && sp_test_stop_signal()) put(sig, sp_test_stop_signal()), told = 1;
}
