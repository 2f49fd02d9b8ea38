/* What a [connected] layer keeps, shared by connected_layer.c and its GPU kernels. */
#ifndef CDB_CONNECTED_LAYER_H
#define CDB_CONNECTED_LAYER_H

#include "activations.h"
#include "batchnorm_layer.h"
#include "network.h"

typedef struct {
    int rows, in, out;   /* GEMM rows (batch or batch*tokens), features in and out */
    activation act;
    int batch_normalize;
    cdb_param *weights, *biases;
    batchnorm bn;
    /* (batch, outputs), for the backward pass, the same on the CPU and the
     * GPU: with GELU and no batch norm (computed in place, fused with its
     * derivative) the derivative f'(z); with another activation its input z */
    float *act_cache;
} connected_priv;

#endif
