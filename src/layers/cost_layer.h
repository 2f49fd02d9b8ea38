/* What a [cost] layer keeps, shared by cost_layer.c and its GPU kernels. */
#ifndef CDB_COST_LAYER_H
#define CDB_COST_LAYER_H

#include "network.h"

typedef struct {
    float scale; /* the cost's weight: the classifier learns from (1 + scale) x the cross-entropy gradient */
} cost_priv;

/* scale x the cross-entropy of probabilities p (batch, classes) against
 * net->truth: what the layer adds to a training pass's loss. */
double cdb_cost_extra_loss(const cdb_layer *l, const cdb_network *net, const float *p);

#endif
