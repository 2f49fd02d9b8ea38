/* What a [shortcut] layer keeps, shared by shortcut_layer.c and its GPU kernels. */
#ifndef CDB_SHORTCUT_LAYER_H
#define CDB_SHORTCUT_LAYER_H

#include "activations.h"
#include "network.h"

typedef struct {
    int from;
    activation act;
    float *preact;
    float drop_connect;   /* stochastic depth: the probability of dropping an image's residual branch in training */
    float *branch_scale;  /* (batch): this pass's factor on the branch, 0 or 1/(1-drop_connect); 1 in eval */
} shortcut_priv;

/* Draws this pass's branch factors (the host, for both paths); returns
 * whether any differs from 1. */
int shortcut_draw(cdb_layer *l, cdb_network *net, int train);

#endif
