/* What an [activation] layer keeps, shared by activation_layer.c and its GPU kernels. */
#ifndef CDB_ACTIVATION_LAYER_H
#define CDB_ACTIVATION_LAYER_H

#include "activations.h"

typedef struct {
    activation act;
} activation_priv;

#endif
