/* What a [token_pool] layer keeps, shared by token_pool_layer.c and its GPU kernels. */
#ifndef CDB_TOKEN_POOL_LAYER_H
#define CDB_TOKEN_POOL_LAYER_H

#include "network.h"

typedef struct {
    int mean;
} pool_priv;

#endif
