/* The trainer: what turns a network (the model, core/network.h) into a
 * training run. It owns the optimizer and the learning-rate schedule (the
 * training keys of [net]), the counters (steps, images seen, skipped
 * steps), ChannelDropBack's per-run statistics, the gradient sum over
 * data-parallel ranks and profiling; one step is cdb_trainer_step. The
 * training loop with its checkpoints and logs (train.h) drives one. */
#ifndef CDB_TRAINER_H
#define CDB_TRAINER_H

#include <stdint.h>
#include <stdio.h>

#include "cdbnet.h"
#include "cfg.h"
#include "dist.h"
#include "dropback.h"
#include "network.h"
#include "train_config.h"

/* ema=1: one weights-file array of the network and its moving average. */
typedef struct {
    float *weights;            /* the network's array (l->io[k]) */
    float *avg;                /* its moving average */
    float *raw;                /* the weights while the average is swapped in */
    size_t n;                  /* floats */
} cdb_ema_array;

struct cdb_trainer {
    cdb_network *net;
    train_config cfg;          /* [net]'s training keys (-set changes them before; the loop resolves the length) */
    cdb_moments *moments;      /* the optimizer's state: one per tensor of net, in network order */

    /* Counters: what a checkpoint records (seen in the weights file, step in the state). */
    uint64_t seen;             /* images trained on */
    int step;                  /* optimizer steps done */
    int step_failed;           /* the last step failed (see cdb_last_error) */
    int step_skipped;          /* nan_policy=skip_step: the last step's loss or gradient was not finite, its update dropped */
    long skipped_steps;        /* how many steps were skipped so far */
    dropback_stats dropback_stats; /* counted by each draw; the training loop resets and prints them */
    double grad_norm;          /* clip_grad_norm > 0: the last step's global gradient norm before clipping (else 0) */

    /* [net] ema=1: the exponential moving average of every weights-file
     * array (parameters and batch-norm statistics), as timm's ModelEmaV3. */
    cdb_ema_array *ema;        /* one per weights-file array, in weights-file order; NULL when off */
    int n_ema;
    double best_ema_top1;      /* the best validation of the average so far (-1 before any) */

    /* [net] class_weights=: PyTorch's CrossEntropyLoss(weight=...), or NULL. */
    float *class_weights;      /* (classes) */
    float *sample_scale;       /* (mini_batch): each image's factor in the pass under way */

    /* Data-parallel runs (net->ranks > 1): the gradient sum's buffer. */
    cdb_dist_state dist;
    int summing_gradients;     /* this step's last backward starts the sum over the ranks */
    int dist_failed;           /* starting the sum failed (the step fails) */

    /* Profiling (cdbnet benchmark): when `profile` is set, seconds spent are
     * added here. forward_seconds and backward_seconds have one entry per layer. */
    int profile;
    double *forward_seconds, *backward_seconds;
    double update_seconds, dropback_seconds;
    double comm_seconds;       /* data-parallel runs: the gradient sum over the ranks */
};

/* The full build: the model (cdb_network_build_model), the trainer's and
 * the data pipeline's keys of [net] each read by its reader, then one
 * check for unknown keys. The cfg stays the caller's. NULL with the error
 * recorded (file, line, section, key). */
cdb_network *cdb_network_build(cfg_file *cfg);

/* The training keys of [net], into `t` (max_batches may still be 0 until
 * cdb_trainer_resolve_length). 0, or -1 with the error recorded. */
int cdb_train_config_read(cfg_reader *r, train_config *t);
/* [net] class_weights= of a network with `classes` outputs: a list of
 * `classes` numbers, or a file with one per line; each finite and not
 * negative, not all 0. *out: a new array, or NULL when the key is absent.
 * 0, or -1 with the error recorded (file, line, key; the weights file and
 * its line). */
int cdb_class_weights_read(cfg_reader *r, int classes, float **out);

/* cdb_trainer_new, cdb_trainer_free and cdb_trainer_step are in cdbnet.h.
 * The step: the mean loss, or NaN with the weights untouched: when the
 * loss is not finite (step_skipped under nan_policy=skip_step), or when the
 * step failed (step_failed set, the error recorded: out of memory, a CUDA
 * error, a failure on another rank). No check of the labels (cdb_train_step
 * of the API checks them). */
float cdb_trainer_run_step(cdb_trainer *tr, const float *images, const int *labels);
/* The same on a mixed batch (mixup.h): each image's targets are timm's
 * lam y + (1 - lam) y' with y' = partners[i] (soft targets: with class
 * weights, PyTorch's mean over the images as for probability targets). */
float cdb_trainer_run_step_mix(cdb_trainer *tr, const float *images, const int *labels, const int *partners, float lam);
/* The learning rate of the next step. */
float cdb_trainer_learning_rate(const cdb_trainer *tr);
/* Steps the run will take: max_batches, or max_epochs over `train_size`;
 * burn_in and fractional steps= resolved against it. 0, or -1 (recorded)
 * when the cfg gives neither. */
int cdb_trainer_resolve_length(cdb_trainer *tr, int train_size);

/* ema=1: the decay of the update after optimizer step `step` (1-based),
 * ModelEmaV3's get_decay: 0 at the first (the average starts as the
 * weights), then ema_decay, or with ema_warmup the warm-up's. */
double cdb_ema_decay(const train_config *t, int step);
/* Put the average into the network's arrays (in = 1; the raw weights kept)
 * or the raw weights back (in = 0): to validate or save the average. 0, or
 * -1 after a device error (recorded). */
int cdb_trainer_ema_swap(cdb_trainer *tr, int in);
/* The average's file beside a weights file: PATH with .weights replaced by
 * .ema.weights (appended when PATH does not end in .weights). */
void cdb_ema_path(const char *weights_path, char *buf, size_t n);

/* Per-layer and per-phase timing for `cdbnet benchmark`. */
int cdb_trainer_enable_profiling(cdb_trainer *tr); /* 0, or -1 out of memory */
void cdb_trainer_reset_profile(cdb_trainer *tr);

/* The network's layers, shapes, parameters and ChannelDropBack, and the
 * training semantics the trainer of its cfg follows (darknet= or not). */
void cdb_network_print_summary(const cdb_network *net, FILE *out);

#endif
