/* cdbnet public API: build a network from a Darknet-style .cfg file, load and
 * save Darknet-layout weights, choose threads and device, load a dataset of
 * a .data file, train with ChannelDropBack (a step at a time, or a whole
 * run with a progress callback), evaluate and predict. Link with
 * libcdbnet.so (it exports exactly these functions), or with libcdbnet.a
 * and the libraries it needs (docs/embedding.md). Every symbol of both
 * starts with cdb_.
 *
 * Every function that can fail returns NULL or a non-zero status and leaves a
 * message in cdb_last_error(); the library never exits the process. */
#ifndef CDBNET_H
#define CDBNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cdb_network cdb_network;
typedef struct cdb_trainer cdb_trainer;
typedef struct cdb_dataset cdb_dataset;

/* CPU threads for the GEMMs and OpenMP loops of this process (0: every CPU
 * it may run on). */
void cdb_set_threads(int n);

/* Parse `cfg_path`, apply `overrides` ("net.key=value" or "LAYER.key=value",
 * as the -set flag takes them) and build the network with freshly
 * initialised weights. */
cdb_network *cdb_network_load(const char *cfg_path, const char *const *overrides, int n_overrides);
void cdb_network_free(cdb_network *net);

/* CUDA devices of this machine (0 in a build without GPU=1). */
int cdb_gpu_count(void);
/* Run the network on CUDA device `device` from now on (GPU builds; the
 * weights go with it). 0, or -1 with the error recorded. Networks run on
 * the CPU unless moved. */
int cdb_network_to_gpu(cdb_network *net, int device);
/* Turn ChannelDropBack off in every layer (the baseline of a comparison:
 * the same network and streams, no masks). It is on as the cfg says. */
void cdb_network_dropback_off(cdb_network *net);

/* Darknet weights layout; see docs/weights.md. Saving is atomic. The
 * header's images-seen count goes with the weights: read from a file,
 * counted up by each training step, written back. */
int cdb_weights_load(cdb_network *net, const char *path);
int cdb_weights_save(const cdb_network *net, const char *path);

/* A trainer for `net` (which must outlive it): the optimizer, learning-rate
 * schedule and run length of the cfg's [net]; its step count at 0 (the
 * schedule starts over; a checkpoint's state restores it), its images seen
 * the weights'. NULL with the error recorded. */
cdb_trainer *cdb_trainer_new(cdb_network *net);
void cdb_trainer_free(cdb_trainer *tr);
/* Optimizer steps done. */
int cdb_trainer_steps(const cdb_trainer *tr);

/* Optimizer state (momentum / AdamW moments and the step count) beside a
 * weights file, so that a run continued from it is exactly the run that
 * was not interrupted. Saving is atomic; loading checks that the state
 * is of the trainer's optimizer and step. */
int cdb_state_load(cdb_trainer *tr, const char *path);
int cdb_state_save(const cdb_trainer *tr, const char *path);

/* A checkpoint: weights FILE and their optimizer state FILE.state as one
 * unit. Saving keeps the previous state as FILE.state.prev, then writes the
 * new state, then the weights (each atomically), so that whenever the
 * process is killed FILE pairs with FILE.state or FILE.state.prev.
 * cdb_checkpoint_load_state loads, for weights already loaded from FILE,
 * the one of the two whose step matches them: 1 (FILE.state), 2
 * (FILE.state.prev), 0 when neither exists, -1 (error) when neither
 * matches. */
int cdb_checkpoint_save(const cdb_trainer *tr, const char *path);
int cdb_checkpoint_load_state(cdb_trainer *tr, const char *path);

/* Input geometry and number of classes of a loaded network. */
int cdb_network_width(const cdb_network *net);
int cdb_network_height(const cdb_network *net);
int cdb_network_channels(const cdb_network *net);
int cdb_network_classes(const cdb_network *net);
int cdb_network_batch(const cdb_network *net);
/* Floats per image: channels x height x width. */
int cdb_network_inputs(const cdb_network *net);
/* The cfg file it was built from, and the .data file its [net] data= names
 * (NULL when none). */
const char *cdb_network_cfg_path(const cdb_network *net);
const char *cdb_network_data_path(const cdb_network *net);

/* One optimizer step on `batch` images (the cfg's batch, NCHW float, already
 * normalised) with integer labels. Returns the mean loss of the batch, or a
 * NaN when the loss was not finite or the step failed (the weights are then
 * left unchanged; cdb_last_error says why when it failed). */
float cdb_train_step(cdb_trainer *tr, const float *images, const int *labels);

/* A dataset of a .data file (docs/data.md): its "train" or "valid" set,
 * checked against the network's input and classes (image files take the
 * network's size). NULL with the error recorded. */
cdb_dataset *cdb_dataset_load(const char *data_file, const char *which, const cdb_network *net);
int cdb_dataset_size(const cdb_dataset *d);
void cdb_dataset_free(cdb_dataset *d);

/* What an evaluation measured: top-1 and top-5 accuracy (fractions), mean
 * loss, images counted, and how many of them had a non-finite output
 * (counted wrong). */
typedef struct {
    float top1, top5, loss;
    int count;
    int nonfinite;
} cdb_metrics;
int cdb_evaluate(cdb_network *net, const cdb_dataset *d, cdb_metrics *out);

/* A whole training run of a trainer, as `cdbnet train` does it: the cfg's
 * schedule and length (from the trainer's step on), validation and a
 * checkpoint each epoch (or valid_every), the final weights, the CSV log. `progress`, when set, is called after every
 * step (validation NULL) and after each validation; a non-zero return
 * stops the run after that step, with a checkpoint saved. */
typedef struct {
    int step, max_steps;       /* steps done, and the run's length */
    double epoch;
    float loss, learning_rate; /* of the last step */
    const cdb_metrics *validation;
} cdb_progress;
typedef int (*cdb_progress_fn)(const cdb_progress *p, void *user);
typedef struct {
    const char *backup_dir;    /* checkpoints, final weights, the log (default "backup") */
    const char *out_path;      /* final weights (default BACKUP/CFGNAME_final.weights) */
    const char *log_path;      /* the CSV log (default BACKUP/CFGNAME_log.csv; "none": none) */
    int quiet;                 /* no progress lines on stdout */
    cdb_progress_fn progress;
    void *user;
} cdb_train_options;
/* `valid` may be NULL (no validation); `opt` may be NULL (the defaults,
 * quiet); `final`, when not NULL, gets the last validation. 0, or -1 with
 * the error recorded. */
int cdb_train(cdb_trainer *tr, const cdb_dataset *train, const cdb_dataset *valid, const cdb_train_options *opt,
              cdb_metrics *final);

/* Class probabilities for `n` images (NCHW float, normalised); `probs`
 * holds n * classes floats. 0, or -1 when a pass failed (out of memory, a
 * device error): `probs` is then not to be used. */
int cdb_predict(cdb_network *net, const float *images, int n, float *probs);

const char *cdb_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
