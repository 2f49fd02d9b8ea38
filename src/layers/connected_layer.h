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
    float *preact; /* (batch, outputs): the activation's input; with GELU (no
                    * batch norm) on the CPU, its derivative there instead */
} connected_priv;

#endif
