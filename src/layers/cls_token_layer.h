/* What a [cls_token] layer keeps, shared by cls_token_layer.c and its GPU kernels. */
#ifndef CDB_CLS_TOKEN_LAYER_H
#define CDB_CLS_TOKEN_LAYER_H

#include "network.h"

typedef struct {
    cdb_param *token;
} cls_priv;

#endif
