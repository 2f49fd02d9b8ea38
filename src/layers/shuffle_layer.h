/* What a [shuffle] layer keeps, shared with its GPU kernels. */
#ifndef CDB_SHUFFLE_LAYER_H
#define CDB_SHUFFLE_LAYER_H

#include "network.h"

typedef struct {
    int groups;
} shuffle_priv;

#endif
