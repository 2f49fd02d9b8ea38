/* Shared by the fuzz harnesses (libFuzzer): a per-process scratch file for
 * loaders that take a path, and a memory limit so that a cfg asking for a
 * huge network is refused (as the library must) rather than reported as
 * the fuzzer's out-of-memory. */
#ifndef CDB_FUZZ_COMMON_H
#define CDB_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "utils.h"

static const char *fuzz_path(const char *suffix)
{
    static char path[2][256];
    static int next;
    char *p = path[next++ & 1];
    snprintf(p, sizeof(path[0]), "/tmp/cdbnet-fuzz-%ld%s", (long)getpid(), suffix);
    return p;
}

static int fuzz_write(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t put = fwrite(data, 1, size, f);
    return fclose(f) || put != size ? -1 : 0;
}

static void fuzz_limits(void)
{
    static int done;
    if (done++) return;
    cdb_set_memory_limit(256u << 20);
}

#endif
