/* cdbnet public API: build a network from a Darknet-style .cfg file, load and
 * save Darknet-layout weights, train on batches with ChannelDropBack, and
 * predict. Link with libcdbnet.a (see README.md for the libraries it needs).
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

/* Parse `cfg_path`, apply `overrides` ("net.key=value" or "LAYER.key=value",
 * as the -set flag takes them) and build the network with freshly
 * initialised weights. */
cdb_network *cdb_network_load(const char *cfg_path, const char *const *overrides, int n_overrides);
void cdb_network_free(cdb_network *net);

/* Darknet weights layout; see docs/weights.md. Saving is atomic. */
int cdb_weights_load(cdb_network *net, const char *path);
int cdb_weights_save(const cdb_network *net, const char *path);

/* Optimizer state (momentum / AdamW moments and the step count) beside a
 * weights file, so that a run continued from it is exactly the run that
 * was not interrupted. Saving is atomic. */
int cdb_state_load(cdb_network *net, const char *path);
int cdb_state_save(const cdb_network *net, const char *path);

/* A checkpoint: weights FILE and their optimizer state FILE.state as one
 * unit. Saving keeps the previous state as FILE.state.prev, then writes the
 * new state, then the weights (each atomically), so that whenever the
 * process is killed FILE pairs with FILE.state or FILE.state.prev.
 * cdb_checkpoint_load_state loads, for weights already loaded from FILE,
 * the one of the two whose step matches them: 1 (FILE.state), 2
 * (FILE.state.prev), 0 when neither exists, -1 (error) when neither
 * matches. */
int cdb_checkpoint_save(const cdb_network *net, const char *path);
int cdb_checkpoint_load_state(cdb_network *net, const char *path);

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
 * NaN when the loss was not finite (the weights are then left unchanged). */
float cdb_train_step(cdb_network *net, const float *images, const int *labels);

/* Class probabilities for `n` images (NCHW float, normalised); `probs`
 * holds n * classes floats. 0, or -1 when a pass failed (out of memory, a
 * device error): `probs` is then not to be used. */
int cdb_predict(cdb_network *net, const float *images, int n, float *probs);

const char *cdb_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
