/* What a [convolutional] layer keeps, shared by convolutional_layer.c and its GPU kernels. */
#ifndef CDB_CONVOLUTIONAL_LAYER_H
#define CDB_CONVOLUTIONAL_LAYER_H

#include "activations.h"
#include "batchnorm_layer.h"
#include "network.h"

typedef struct {
    int filters, size, stride, pad, groups;
    int dilation;  /* Darknet's dilation: taps `dilation` pixels apart, padding pad * dilation (1: none) */
    int chunk;     /* images per GEMM on the CPU (columns sized to stay in cache) */
    int direct_chunk; /* images per chunk of the direct path (conv_direct.h) */
    int gpu_chunk; /* images per GEMM on the GPU without cuDNN (larger: no cache to fit) */
    activation act;
    int batch_normalize;
    cdb_param *weights, *biases;
    batchnorm bn;
    float *preact; /* (batch, outputs): input of the activation */
} conv_priv;

/* Which way this [convolutional] layer goes now under the network's
 * conv_policy (network.h): the shifted GEMMs ('same' stride-1 convolutions
 * with 16 or more input channels on large images; output and input
 * gradient); the direct kernels for its forward (backward = 0) or backward
 * (1) pass; Winograd F(2x2, 3x3) for its output (and direct input gradient). */
int cdb_convolutional_uses_shift(const cdb_layer *l, const cdb_network *net);
int cdb_convolutional_uses_direct(const cdb_layer *l, const cdb_network *net, int backward);
int cdb_convolutional_uses_winograd(const cdb_layer *l, const cdb_network *net);
int cdb_convolutional_uses_depthwise(const cdb_layer *l, const cdb_network *net);

#endif
