/* Data-parallel training over processes (make MPI=1, Open MPI): every rank
 * holds the whole network, takes its shard of each global batch, and the
 * gradients are summed across ranks before the optimizer, which then runs
 * identically everywhere. Without MPI (or under one process) these are the
 * one-rank versions: rank 0 of 1, nothing to exchange. */
#ifndef CDB_DIST_H
#define CDB_DIST_H

#include <stddef.h>

struct cdb_network;

/* A trainer's side of the gradient sum: the packed buffer the exchanges
 * use, and how many floats the last sum moved (ChannelDropBack's dropped
 * channels stay out, unless `whole`: gradient clipping reads the whole
 * summed gradient). Zero-initialised; the buffer is the owner's to free. */
typedef struct {
    float *buffer;
    size_t size;
    size_t floats_sent;
    int whole;
} cdb_dist_state;

/* MPI_Init when built with MPI=1 (a run not started by mpirun is one rank).
 * 0, or -1 with the error recorded. */
int cdb_dist_init(int *argc, char ***argv);
void cdb_dist_finalize(void);
int cdb_dist_rank(void);
int cdb_dist_size(void);
/* Whether MPI is compiled in. */
int cdb_dist_available(void);

/* Sum `n` doubles over the ranks, in place, the same bits on every rank. */
int cdb_dist_sum_doubles(double *v, int n);
/* Sum every trainable tensor's gradient over the ranks, in place: reduced
 * to rank 0 in one packed buffer and broadcast from it, so every rank
 * holds the same bits by construction (the reduction's order is MPI's;
 * what matters for identical weights is that all ranks apply one result).
 * 0, or -1 with the error recorded. */
int cdb_dist_sum_gradients(struct cdb_network *net, cdb_dist_state *ds);
/* The same sum in buckets that start while the backward pass is still
 * running (CPU ranks): cdb_dist_begin_gradients before the last subdivision's
 * backward, cdb_dist_layer_done after each of its layers (last to first: the
 * layer's gradients are packed and, once DIST_BUCKET_FLOATS have gathered,
 * reduced to rank 0 without waiting), then cdb_dist_finish_gradients waits for
 * them, broadcasts rank 0's sums and, when `apply`, writes them back.
 * Every rank posts the same buckets in the same order (a rank whose pass
 * failed posts the rest in finish), so the ranks never wait on each other
 * in different exchanges. 0, or -1 with the error recorded. */
#define DIST_BUCKET_FLOATS (1 << 18)
int cdb_dist_begin_gradients(struct cdb_network *net, cdb_dist_state *ds);
void cdb_dist_layer_done(struct cdb_network *net, cdb_dist_state *ds, int layer);
int cdb_dist_finish_gradients(struct cdb_network *net, cdb_dist_state *ds, int apply);
/* Every rank waits for all. */
void cdb_dist_barrier(void);
/* Rank 0's bytes to every rank. */
int cdb_dist_broadcast(void *buf, size_t bytes);
/* Stop every rank with a message (a rank that failed alone). */
void cdb_dist_abort(int code);

#endif
