/* What a [scale_channels] layer keeps, shared with its GPU kernels. */
#ifndef CDB_SCALE_CHANNELS_LAYER_H
#define CDB_SCALE_CHANNELS_LAYER_H

#include "network.h"

typedef struct {
    int from; /* the layer whose output is scaled */
} scale_channels_priv;

#endif
