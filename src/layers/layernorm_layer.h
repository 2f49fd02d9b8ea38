/* What a [layernorm] layer keeps, shared by layernorm_layer.c and its GPU kernels. */
#ifndef CDB_LAYERNORM_LAYER_H
#define CDB_LAYERNORM_LAYER_H

#include "network.h"

typedef struct {
    float eps;
    cdb_param *scales, *biases;
    float *x_hat;    /* (batch * tokens, d) */
    float *inv_std;  /* (batch * tokens) */
} layernorm_priv;

#endif
