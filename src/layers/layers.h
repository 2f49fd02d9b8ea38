/* What layer files share: the registry of layer types, the GPU-twin
 * declarations and the helpers a layer's make uses to declare what it owns.
 * Each layer type is one file exporting a `const layer_ops` (network.h). */
#ifndef CDB_LAYERS_H
#define CDB_LAYERS_H

#include "activations.h"
#include "cfg.h"
#include "network.h"

/* The registry (registry.c, from layer_list.h): the type a cfg section
 * names (its name or alias), or NULL; and every type's name, comma
 * separated, for error messages. */
const layer_ops *cdb_layer_ops_find(const char *section);
const char *cdb_layer_type_names(void);

/* In a layer file, before its layer_ops: LAYER_GPU_TWINS(name) declares
 * name_forward_gpu and name_backward_gpu (name_layer_kernels.cu) in GPU
 * builds, and GPU_TWIN(f) is f there and NULL in CPU builds. A type without
 * CUDA code leaves both out and sets NULL. */
#ifdef GPU
#define LAYER_GPU_TWINS(name)                                                     \
    void cdb_##name##_forward_gpu(cdb_layer *l, cdb_network *net, int train);           \
    void cdb_##name##_backward_gpu(cdb_layer *l, cdb_network *net)
#define GPU_TWIN(f) f
#else
#define LAYER_GPU_TWINS(name) struct layer_gpu_twins_unused_##name
#define GPU_TWIN(f) NULL
#endif

/* The type's layer_ops, at the end of its file (after its static make,
 * forward and backward): LAYER_OPS(name, alias or NULL, LAYER_TAKES_*,
 * computes the cost) defines name_layer_ops with the GPU twins of
 * name_layer_kernels.cu; LAYER_OPS_CPU_ONLY for a type without CUDA code. */
#define LAYER_OPS(type, alias_, takes_, loss_)                                                     \
    LAYER_GPU_TWINS(type);                                                                         \
    const layer_ops cdb_##type##_layer_ops = {.name = #type, .alias = alias_, .takes = takes_, .loss = loss_, \
                                        .make = make, .forward = forward, .backward = backward,      \
                                        .forward_gpu = GPU_TWIN(cdb_##type##_forward_gpu),                 \
                                        .backward_gpu = GPU_TWIN(cdb_##type##_backward_gpu)}
#define LAYER_OPS_CPU_ONLY(type, alias_, takes_, loss_)                                            \
    const layer_ops cdb_##type##_layer_ops = {.name = #type, .alias = alias_, .takes = takes_, .loss = loss_, \
                                        .make = make, .forward = forward, .backward = backward}

/* Helpers shared by layer files (layer.c). */
/* The layer's private state, zeroed, as l->priv (freed with the network,
 * after destroy, which frees what it points to; destroy may be NULL): the
 * state, or NULL out of memory. */
void *cdb_layer_priv(cdb_layer *l, size_t size, void (*destroy)(cdb_layer *l));
/* Sets inputs/outputs and allocates output and delta; fails (recorded in r)
 * when the output shape is absurdly large. */
int cdb_layer_alloc_output(cdb_layer *l, cfg_reader *r);
/* The same for a layer whose output has its input's shape (image or
 * token sequence). */
int cdb_layer_alloc_same_shape(cdb_layer *l, cfg_reader *r);
/* The `activation` key (silu is accepted for swish). */
activation cdb_layer_read_activation(cfg_reader *r, activation def);
/* Output shape of a token sequence: (tokens, features). */
void cdb_layer_set_sequence_output(cdb_layer *l, int tokens, int features);
/* Truncated normal N(0, std) cut at +-2 std (position embeddings, class token). */
void cdb_init_trunc_normal(float *w, size_t n, float std, uint64_t seed, int layer_index, int salt);
/* A weight tensor's initial values: He-uniform U(-sqrt(6/fan_in),
 * sqrt(6/fan_in)), or N(0, init_std) truncated at 2 std when init_std > 0
 * (the layer's init_std key). */
void cdb_init_weights(float *w, size_t n, int fan_in, float init_std, uint64_t seed, int layer_index);
/* Index of the layer that `ref` (relative if negative) names from layer `self`, or -1. */
int cdb_layer_resolve_ref(int self, int ref);
/* The random stream of this layer's current pass (dropout masks, drop-
 * connect factors, crop windows): the run's dropout stream for (step,
 * subdivision, layer), so that a resumed run draws the same. */
cdb_rng cdb_layer_pass_rng(const cdb_layer *l, const cdb_network *net);
/* The `from` key (required): the earlier layer it names, or -1 with the
 * error recorded in r; `what` says what it is for in the message. */
int cdb_layer_read_from(cfg_reader *r, const cdb_layer *l, const char *what);
/* Allocation in a make: the buffers of xcalloc may be NULL (out of memory);
 * a make checks those it writes into, and cdb_network_build fails the layer
 * when any allocation of its make failed. The initialisers below do nothing
 * on NULL. */
/* Register one of the layer's trainable tensors (once, at build), zeroed
 * (value and grad NULL when out of memory).
 * eligible: a weight that multiplies the input, which ChannelDropBack may
 * mask, seen as [rows][channels][inner]. More than LAYER_MAX_PARAMS is a
 * build error that cdb_network_build reports. */
cdb_param *cdb_layer_add_param(cdb_layer *l, const char *name, size_t size, int eligible, int rows, int channels,
                           int inner);
/* An array of the weights file, in file order (docs/weights.md). */
void cdb_layer_add_io(cdb_layer *l, float *array, size_t n);
/* The same for a variance (batch norm's rolling variance): a weights file
 * whose array holds a negative value is refused. */
void cdb_layer_add_io_variance(cdb_layer *l, float *array, size_t n);

#endif
