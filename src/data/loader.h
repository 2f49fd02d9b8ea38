/* The training batches, one step ahead: a thread fills the batch of the
 * next step (decoding image files on the dataset's worker threads) while
 * the network trains on this one. A step's batch is exactly what the
 * synchronous cdb_dataset_fill_batch gives for it (the same order of the
 * epoch, the same augmentation stream of the step), so a run and a
 * resumed run see the same images with or without it. */
#ifndef CDB_LOADER_H
#define CDB_LOADER_H

#include <pthread.h>

#include "data.h"

typedef struct {
    const cdb_dataset *d;
    const input_config *in;
    uint64_t seed;
    int batch, steps_per_epoch, max_steps;
    int first, count;    /* this rank's shard of each batch: images first .. first+count-1 */
    pthread_t thread;
    int started, inited;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    float *images[2];
    int *labels[2];
    int ready;           /* the step whose batch is in slot 1 (filled), or -1 */
    int next;            /* the step the thread fills next */
    int stop, failed;
    char error[2048];
    int *order, order_epoch;
    double wait_seconds; /* the trainer's time spent waiting for batches */
} batch_loader;

/* Start filling from step `first_step`, images shard..shard+count-1 of
 * each batch of `batch` (the whole batch: 0, batch). 0, or -1 with the
 * error recorded. */
int cdb_loader_start(batch_loader *l, const cdb_dataset *d, const input_config *in, uint64_t seed, int batch,
                 int shard, int count, int first_step, int max_steps);
/* The batch of `step` (the steps in order from `first`): pointers valid
 * until the next call. 0, or -1 with the error recorded (an image that
 * could not be read). */
int cdb_loader_next(batch_loader *l, int step, float **images, int **labels);
void cdb_loader_stop(batch_loader *l);

/* Images shard..shard+count-1 of the batch of `step` of a run (batch
 * images), synchronously: the epoch's order, the step's augmentation
 * stream, advanced past the images before the shard, so that the shards of
 * all ranks together are exactly the one-process batch. */
int cdb_loader_fill_step(const cdb_dataset *d, const input_config *in, uint64_t seed, int batch, int shard, int count,
                     int step, int *order, int *order_epoch, float *images, int *labels);

#endif
