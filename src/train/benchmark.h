/* `cdbnet benchmark`: training throughput on synthetic data, with a
 * per-phase and per-layer profile and the BLAS ceiling of the same run. */
#ifndef CDB_BENCHMARK_H
#define CDB_BENCHMARK_H

#include "data.h"
#include "network.h"

typedef struct {
    int warmup;   /* untimed steps first */
    int steps;    /* timed steps per repeat */
    int repeats;  /* repeats; images/s is the median */
    int top;      /* layers shown in the per-layer table */
} benchmark_options;

int cdb_run_benchmark(cdb_network *net, const benchmark_options *opt);
/* What ChannelDropBack costs and what compute skipping saves: the four
 * networks (built from the same cfg) are timed alternately, step by step:
 * off, on at the final layer rate, and at layer rate 1 / channel rate 0.5
 * computing then masking, and skipping dropped channels. */
int cdb_run_dropback_report(cdb_network *off, cdb_network *on, cdb_network *mask, cdb_network *skip,
                        const benchmark_options *opt);
/* Training from a real dataset (`cdbnet benchmark -data`): the first
 * images of d's training set that the timed steps need; for image files,
 * their batches (through the prefetching loader) against the same images
 * in memory (a cache=1 copy), arm by arm alternately, images/s per repeat
 * and the medians. data_only: the batches alone, without training
 * (images/s decoded and augmented). 0, or -1 with the error recorded. */
int cdb_run_data_benchmark(cdb_network *net, data_config *d, const benchmark_options *opt, int data_only);
/* Median GFLOP/s of an n x n x n sgemm with the current threads. */
double cdb_sgemm_gflops(int n, int repeats);

#endif
