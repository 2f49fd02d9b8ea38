/* What a [convolutional] layer keeps, shared by convolutional_layer.c and its GPU kernels. */
#ifndef CDB_CONVOLUTIONAL_LAYER_H
#define CDB_CONVOLUTIONAL_LAYER_H

#include "activations.h"
#include "batchnorm_layer.h"
#include "network.h"

typedef struct {
    int filters, size, stride, pad, groups;
    int chunk; /* images per GEMM */
    activation act;
    int batch_normalize;
    cdb_param *weights, *biases;
    batchnorm bn;
    float *preact; /* (batch, outputs): input of the activation */
} conv_priv;

#endif
