/* What a [convolutional] layer keeps, shared by convolutional_layer.c and its GPU kernels. */
#ifndef CDB_CONVOLUTIONAL_LAYER_H
#define CDB_CONVOLUTIONAL_LAYER_H

#include "activations.h"
#include "batchnorm_layer.h"
#include "network.h"

typedef struct {
    int filters, size, stride, pad, groups;
    int chunk;     /* images per GEMM on the CPU (columns sized to stay in cache) */
    int direct_chunk; /* images per chunk of the direct path (conv_direct.h) */
    int gpu_chunk; /* images per GEMM on the GPU without cuDNN (larger: no cache to fit) */
    activation act;
    int batch_normalize;
    cdb_param *weights, *biases;
    batchnorm bn;
    float *preact; /* (batch, outputs): input of the activation */
} conv_priv;

/* 1 (default): on one thread, 'same' stride-1 convolutions with 16 or more
 * input channels on large images compute their output and input gradient by
 * shifted GEMMs instead of im2col; 0: always im2col (tests compare the two). */
extern int conv_shift_enabled;
/* whether this [convolutional] layer takes the shifted-GEMM path now */
int convolutional_uses_shift(const cdb_layer *l);

/* whether this layer's forward (backward = 0) or backward (1) pass takes the
 * direct kernels now */
int convolutional_uses_direct(const cdb_layer *l, int backward);
/* whether its output (and direct input gradient) take Winograd F(2x2, 3x3) */
int convolutional_uses_winograd(const cdb_layer *l);

#endif
