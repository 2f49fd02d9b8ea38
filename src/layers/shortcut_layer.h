/* What a [shortcut] layer keeps, shared by shortcut_layer.c and its GPU kernels. */
#ifndef CDB_SHORTCUT_LAYER_H
#define CDB_SHORTCUT_LAYER_H

#include "activations.h"
#include "network.h"

typedef struct {
    int from;
    activation act;
    float *preact;
} shortcut_priv;

#endif
