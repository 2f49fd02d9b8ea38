/* What a [local_avgpool] layer keeps, shared with its GPU kernels. */
#ifndef CDB_LOCAL_AVGPOOL_LAYER_H
#define CDB_LOCAL_AVGPOOL_LAYER_H

#include "network.h"

typedef struct {
    int size, stride, padding;
} local_avgpool_priv;

#endif
