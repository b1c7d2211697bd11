/* sprout command line: parse, call, map errors to exit codes. */
#include "sprout/core.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help")) {
        printf("usage: sprout prepare|train|sample|eval|inspect|bench ...\n");
        return argc < 2 ? 2 : 0;
    }
    fprintf(stderr, "sprout: unknown command '%s'\n", argv[1]);
    return 2;
}
