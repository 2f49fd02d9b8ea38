/* What a [attention] layer keeps, shared by attention_layer.c and its GPU kernels. */
#ifndef CDB_ATTENTION_LAYER_H
#define CDB_ATTENTION_LAYER_H

#include "network.h"

typedef struct {
    int heads, T, D, dh;
    float scale;
    cdb_param *qkv_w, *qkv_b, *proj_w, *proj_b;
    float *qkv;      /* (batch*T, 3D) */
    float *probs;    /* (batch, heads, T, T) softmax of the scores */
    float *attended; /* (batch*T, D): heads' outputs side by side */
    float *d_attended, *d_qkv, *d_scores; /* backward scratch, same shapes */
} attention_priv;

#endif
