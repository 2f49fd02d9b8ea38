/* What a [dropout] layer keeps, shared by dropout_layer.c and its GPU kernels. */
#ifndef CDB_DROPOUT_LAYER_H
#define CDB_DROPOUT_LAYER_H

#include "network.h"

typedef struct {
    float probability;
    uint8_t *keep; /* (batch, inputs) */
} dropout_priv;

#endif
