/* A trainable tensor: its value, this step's gradient and the optimizer's
 * state, kept in separate buffers (unlike Darknet's weight_updates, which
 * doubles as momentum) so that ChannelDropBack can mask exactly this step's
 * gradient and nothing else. */
#ifndef CDB_PARAM_H
#define CDB_PARAM_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name;   /* "weights", "biases", "scales", ... */
    float *value;       /* (size) */
    float *grad;        /* (size): this step's gradient, summed over subdivisions */
    float *moment1;     /* (size): SGD momentum buffer / AdamW first moment; allocated by the first update */
    float *moment2;     /* (size): AdamW second moment; allocated by the first update */
    size_t size;

    /* Dropback view of the tensor as [rows][channels][inner]: for a
     * convolution rows = filters, channels = in/groups, inner = size*size;
     * for a linear map rows = outputs, channels = inputs, inner = 1. */
    int rows, channels, inner;
    int eligible;       /* declared by the layer: a weight that multiplies its input (ChannelDropBack may mask it) */
    int decay;          /* weight decay applies to this tensor */

    /* ChannelDropBack's state of this tensor, owned by dropback.c (its
     * verbs in dropback.h read it): NULL unless eligible. */
    struct cdb_dropback_tensor *db;
} cdb_param;

#endif
