/* What a [pos_embed] layer keeps, shared by pos_embed_layer.c and its GPU kernels. */
#ifndef CDB_POS_EMBED_LAYER_H
#define CDB_POS_EMBED_LAYER_H

#include "network.h"

typedef struct {
    cdb_param *embedding;
} pos_priv;

#endif
