/* What a [maxpool] layer keeps, shared by maxpool_layer.c and its GPU kernels. */
#ifndef CDB_MAXPOOL_LAYER_H
#define CDB_MAXPOOL_LAYER_H

#include "network.h"

typedef struct {
    int size, stride, padding;
    int *argmax; /* (batch, outputs): input index of each maximum */
} maxpool_priv;

#endif
