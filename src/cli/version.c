/* `sprout --version`: the release, the git description of the built tree, and the versions of
 * the libraries a result depends on (what to quote in a bug report or beside a measurement). */
#include "sprout/train.h"
#include "sprout_version.h"

#include <cyaml/cyaml.h>
#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

char *openblas_get_config(void);

void sp_version_print(FILE *f) {
    fprintf(f, "sprout %s (git %s)\n", SP_VERSION,
            SP_GIT_DESCRIBE[0] ? SP_GIT_DESCRIBE : "not available at build time");
    char mpi[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int len = 0;
    MPI_Get_library_version(mpi, &len);
    mpi[strcspn(mpi, "\n,")] = 0; /* Open MPI appends its repository and date */
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    fprintf(f, "  MPI: %s\n  HDF5: %u.%u.%u (parallel)\n  BLAS: %s\n  libcyaml: %s\n  zlib: %s\n",
            mpi, maj, min, rel, openblas_get_config(), cyaml_version_str, zlibVersion());
}
