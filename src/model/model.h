/* The model's own functions (src/model/): building a network's layers from
 * a cfg, and its files (weights, and the optimizer state its tensors hold).
 * The public ones are in include/cdbnet.h; the full build, which also reads
 * the trainer's and the data pipeline's keys, is cdb_network_build
 * (src/train/trainer.h). */
#ifndef CDB_MODEL_H
#define CDB_MODEL_H

#include <stdint.h>

#include "network.h"

/* The layers and the model's keys of [net] (parser.c); the other keys of
 * [net] are left for their readers and the check for unknown keys.
 * `optimizer_copies`: floats of optimizer state per parameter that the
 * trainer will allocate, counted against the memory limit. */
struct cfg_file;
cdb_network *cdb_network_build_model(struct cfg_file *cfg, int optimizer_copies);

/* A weights file (atomically) with the given images-seen count in its
 * header; `step` names the step in messages. */
int cdb_weights_write(const cdb_network *net, const char *path, uint64_t seen, int step);
/* Optimizer state (one cdb_moments per tensor of net, as a trainer holds
 * it), written atomically as optimizer `optimizer` (optimizer_kind) after
 * `step` steps; read back (the host arrays, allocated where missing) only
 * when the file's optimizer and step are those expected. 0, or -1 with the
 * error recorded. */
int cdb_state_write(const cdb_network *net, const cdb_moments *state, const char *path, int optimizer, int step);
int cdb_state_read(const cdb_network *net, cdb_moments *state, const char *path, int optimizer_expected,
                   int step_expected);

/* The seed of every random stream of the network's runs ([net] seed=). */
uint64_t cdb_network_seed(const cdb_network *net);
/* The type of the last layer ("softmax", "logistic", "cost"). */
const char *cdb_network_output_type(const cdb_network *net);
/* The first NaN or infinity in the weights-file arrays (weights, biases,
 * scales, rolling statistics), on the host copies: 1 and where, or 0. */
int cdb_network_first_non_finite(const cdb_network *net, int *layer, int *array, size_t *index);
/* "weights", "biases", ... or "rolling statistics": array k of l's weights-file arrays */
const char *cdb_layer_array_name(const cdb_layer *l, int k);

#endif
