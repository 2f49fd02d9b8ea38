/* Constructors of every layer type. Each reads its own keys from the cfg
 * section, checks them against the input shape already set in l (c, h, w,
 * batch, input, input_delta), and fills in the rest of l. They return 0, or
 * -1 with the error recorded in the reader. */
#ifndef CDB_LAYERS_H
#define CDB_LAYERS_H

#include "activations.h"
#include "cfg.h"
#include "network.h"

int convolutional_layer_make(cdb_layer *l, cfg_reader *r, cdb_network *net);
int connected_layer_make(cdb_layer *l, cfg_reader *r, cdb_network *net);
int batchnorm_layer_make(cdb_layer *l, cfg_reader *r, cdb_network *net);
int maxpool_layer_make(cdb_layer *l, cfg_reader *r, cdb_network *net);
int avgpool_layer_make(cdb_layer *l, cfg_reader *r, cdb_network *net);
int shortcut_layer_make(cdb_layer *l, cfg_reader *r, cdb_network *net);
int route_layer_make(cdb_layer *l, cfg_reader *r, cdb_network *net);
int dropout_layer_make(cdb_layer *l, cfg_reader *r, cdb_network *net);
int softmax_layer_make(cdb_layer *l, cfg_reader *r, cdb_network *net);
int tokens_layer_make(cdb_layer *l, cfg_reader *r, cdb_network *net);
int cls_token_layer_make(cdb_layer *l, cfg_reader *r, cdb_network *net);
int pos_embed_layer_make(cdb_layer *l, cfg_reader *r, cdb_network *net);
int layernorm_layer_make(cdb_layer *l, cfg_reader *r, cdb_network *net);
int attention_layer_make(cdb_layer *l, cfg_reader *r, cdb_network *net);
int token_pool_layer_make(cdb_layer *l, cfg_reader *r, cdb_network *net);

/* The GPU twins of each layer type's forward and backward (*_kernels.cu). */
#ifdef GPU
#define LAYER_GPU_FUNCTIONS(name)                                                 \
    void name##_forward_gpu(cdb_layer *l, cdb_network *net, int train);           \
    void name##_backward_gpu(cdb_layer *l, cdb_network *net);
LAYER_GPU_FUNCTIONS(convolutional)
LAYER_GPU_FUNCTIONS(connected)
LAYER_GPU_FUNCTIONS(batchnorm)
LAYER_GPU_FUNCTIONS(maxpool)
LAYER_GPU_FUNCTIONS(avgpool)
LAYER_GPU_FUNCTIONS(shortcut)
LAYER_GPU_FUNCTIONS(route)
LAYER_GPU_FUNCTIONS(dropout)
LAYER_GPU_FUNCTIONS(softmax)
LAYER_GPU_FUNCTIONS(tokens)
LAYER_GPU_FUNCTIONS(cls_token)
LAYER_GPU_FUNCTIONS(pos_embed)
LAYER_GPU_FUNCTIONS(layernorm)
LAYER_GPU_FUNCTIONS(attention)
LAYER_GPU_FUNCTIONS(token_pool)
#define SET_GPU_FUNCTIONS(l, name)                                                \
    do {                                                                          \
        (l)->forward_gpu = name##_forward_gpu;                                    \
        (l)->backward_gpu = name##_backward_gpu;                                  \
    } while (0)
#else
#define SET_GPU_FUNCTIONS(l, name) \
    do {                           \
    } while (0)
#endif

/* Helpers shared by layer files (network.c). */
/* Sets inputs/outputs and allocates output and delta; fails (recorded in r)
 * when the output shape is absurdly large. */
int layer_alloc_output(cdb_layer *l, cfg_reader *r);
/* Per-layer ChannelDropBack keys (channel_dropback, dropback_channel_rate)
 * applied to the layer's eligible tensor. */
void layer_read_dropback_keys(cfg_reader *r, cdb_param *weights);
/* The `activation` key (silu is accepted for swish). */
activation layer_read_activation(cfg_reader *r, activation def);
/* Output shape of a token sequence: (tokens, features). */
void layer_set_sequence_output(cdb_layer *l, int tokens, int features);
/* Truncated normal N(0, std) cut at +-2 std (position embeddings, class token). */
void init_trunc_normal(float *w, size_t n, float std, uint64_t seed, int layer_index, int salt);
/* A weight tensor's initial values: He-uniform U(-sqrt(6/fan_in),
 * sqrt(6/fan_in)), or N(0, init_std) truncated at 2 std when init_std > 0
 * (the layer's init_std key). */
void init_weights(float *w, size_t n, int fan_in, float init_std, uint64_t seed, int layer_index);
/* Index of the layer that `ref` (relative if negative) names from layer `self`, or -1. */
int layer_resolve_ref(int self, int ref);

#endif
