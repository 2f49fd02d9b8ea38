/* A trainable tensor: its value and this step's gradient, kept apart from
 * the optimizer's state (unlike Darknet's weight_updates, which doubles as
 * momentum) so that ChannelDropBack can mask exactly this step's gradient
 * and nothing else. The optimizer's state is a trainer's (cdb_moments). */
#ifndef CDB_PARAM_H
#define CDB_PARAM_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name;   /* "weights", "biases", "scales", ... */
    float *value;       /* (size) */
    float *grad;        /* (size): this step's gradient, summed over subdivisions */
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

/* One tensor's optimizer state, held by a trainer (one per cdb_param, in
 * network order): SGD's momentum buffer or AdamW's first moment (m1) and
 * AdamW's second moment (m2), each (size) floats, allocated by the first
 * update (NULL before). */
typedef struct cdb_moments {
    float *m1, *m2;
} cdb_moments;

#endif
