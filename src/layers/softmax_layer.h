/* What a [softmax] layer keeps, shared by softmax_layer.c and its GPU kernels. */
#ifndef CDB_SOFTMAX_LAYER_H
#define CDB_SOFTMAX_LAYER_H

typedef struct {
    float temperature; /* Darknet's temperature: softmax(x / T); 1 by default */
} softmax_priv;

#endif
