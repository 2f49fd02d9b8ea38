#include "loader.h"

#include <stdlib.h>
#include <string.h>

int cdb_loader_fill_step(const cdb_dataset *d, const input_config *in, uint64_t seed, int batch, int shard, int count,
                     int step, int *order, int *order_epoch, float *images, int *labels)
{
    int steps_per_epoch = d->n / batch;
    int epoch = step / steps_per_epoch, pos = step % steps_per_epoch;
    if (epoch != *order_epoch) {
        cdb_dataset_epoch_order(d->n, seed, epoch, order);
        *order_epoch = epoch;
    }
    cdb_rng aug = cdb_rng_stream(seed, RNG_STREAM_AUGMENT, (uint64_t)step);
    cdb_dataset_skip_draws(d, in, shard, &aug);
    return cdb_dataset_fill_batch(d, order + (size_t)pos * batch + shard, count, in, 1, &aug, images, labels);
}

static void *fill_ahead(void *arg)
{
    batch_loader *l = arg;
    pthread_mutex_lock(&l->lock);
    while (!l->stop && l->next < l->max_steps) {
        while (!l->stop && l->ready >= 0) pthread_cond_wait(&l->changed, &l->lock);
        if (l->stop) break;
        int step = l->next;
        pthread_mutex_unlock(&l->lock);
        int bad = cdb_loader_fill_step(l->d, l->in, l->seed, l->batch, l->first, l->count, step, l->order,
                                   &l->order_epoch, l->images[1], l->labels[1]);
        pthread_mutex_lock(&l->lock);
        if (bad) {
            l->failed = 1;
            snprintf(l->error, sizeof(l->error), "%s", cdb_last_error());
            pthread_cond_broadcast(&l->changed);
            break;
        }
        l->ready = step;
        l->next = step + 1;
        pthread_cond_broadcast(&l->changed);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

int cdb_loader_start(batch_loader *l, const cdb_dataset *d, const input_config *in, uint64_t seed, int batch,
                 int shard, int count, int first, int max_steps)
{
    memset(l, 0, sizeof(*l));
    l->d = d;
    l->in = in;
    l->seed = seed;
    l->batch = batch;
    l->steps_per_epoch = d->n / batch;
    l->max_steps = max_steps;
    l->first = shard;
    l->count = count;
    l->ready = -1;
    l->next = first;
    l->order_epoch = -1;
    size_t size = (size_t)d->c * d->h * d->w;
    for (int k = 0; k < 2; k++) {
        l->images[k] = cdb_xcalloc((size_t)count * size, sizeof(float));
        l->labels[k] = cdb_xcalloc((size_t)count, sizeof(int));
    }
    l->order = cdb_xcalloc((size_t)d->n, sizeof(int));
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->changed, NULL);
    l->inited = 1;
    if (!l->images[0] || !l->images[1] || !l->labels[0] || !l->labels[1] || !l->order) {
        cdb_loader_stop(l);
        return -1;
    }
    if (pthread_create(&l->thread, NULL, fill_ahead, l) != 0) {
        cdb_set_error("cannot start the batch loader thread");
        cdb_loader_stop(l);
        return -1;
    }
    l->started = 1;
    return 0;
}

int cdb_loader_next(batch_loader *l, int step, float **images, int **labels)
{
    double t0 = cdb_now_seconds();
    pthread_mutex_lock(&l->lock);
    while (!l->failed && l->ready != step) {
        if (l->ready < 0 && l->next > step) break; /* a step out of order: never filled */
        pthread_cond_wait(&l->changed, &l->lock);
    }
    int ok = l->ready == step;
    if (ok) { /* take the filled slot, hand back the one just used */
        float *im = l->images[0];
        int *lab = l->labels[0];
        l->images[0] = l->images[1];
        l->labels[0] = l->labels[1];
        l->images[1] = im;
        l->labels[1] = lab;
        l->ready = -1;
        pthread_cond_broadcast(&l->changed);
    } else if (l->failed) {
        cdb_set_error("%s", l->error);
    } else {
        cdb_set_error("the batch loader was asked for step %d out of order", step);
    }
    pthread_mutex_unlock(&l->lock);
    l->wait_seconds += cdb_now_seconds() - t0;
    if (!ok) return -1;
    *images = l->images[0];
    *labels = l->labels[0];
    return 0;
}

void cdb_loader_stop(batch_loader *l)
{
    if (!l->inited) return;
    l->inited = 0;
    if (l->started) {
        pthread_mutex_lock(&l->lock);
        l->stop = 1;
        pthread_cond_broadcast(&l->changed);
        pthread_mutex_unlock(&l->lock);
        pthread_join(l->thread, NULL);
        l->started = 0;
    }
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->changed);
    for (int k = 0; k < 2; k++) {
        free(l->images[k]);
        free(l->labels[k]);
        l->images[k] = NULL;
        l->labels[k] = NULL;
    }
    free(l->order);
    l->order = NULL;
}
