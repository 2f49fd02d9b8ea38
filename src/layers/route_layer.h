/* What a [route] layer keeps, shared by route_layer.c and its GPU kernels. */
#ifndef CDB_ROUTE_LAYER_H
#define CDB_ROUTE_LAYER_H

#include "network.h"

#define ROUTE_MAX 16

typedef struct {
    int n;
    int from[ROUTE_MAX];
} route_priv;

#endif
