/* `cdbnet benchmark`: training throughput on synthetic data, with a
 * per-phase and per-layer profile and the BLAS ceiling of the same run. */
#ifndef CDB_BENCHMARK_H
#define CDB_BENCHMARK_H

#include "network.h"

typedef struct {
    int warmup;   /* untimed steps first */
    int steps;    /* timed steps per repeat */
    int repeats;  /* repeats; images/s is the median */
    int top;      /* layers shown in the per-layer table */
} benchmark_options;

int run_benchmark(cdb_network *net, const benchmark_options *opt);
/* Median GFLOP/s of an n x n x n sgemm with the current threads. */
double sgemm_gflops(int n, int repeats);

#endif
