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
    /* Shapes that differ (Darknet's rule): the `from` layer's c x h x w,
     * added over the common channels, its map sampled every `stride`
     * pixels (larger than the output) or added every `sample` pixels
     * (smaller); resample 0 when the shapes are equal. */
    int resample, fc, fh, fw, stride, sample;
    float *branch_scale;  /* (batch): this pass's factor on the branch, 0 or 1/(1-drop_connect); 1 in eval */
} shortcut_priv;

/* Draws this pass's branch factors (the host, for both paths); returns
 * whether any differs from 1. */
int cdb_shortcut_draw(cdb_layer *l, cdb_network *net, int train);

/* Output index and `from` index of element (b, k, j, i) of the common
 * region of a resampling shortcut (k < min channels, j < min height,
 * i < min width). */
#define SHORTCUT_OUT_INDEX(l, p, b, k, j, i)                                                                       \
    ((((size_t)(b) * (l)->out_c + (k)) * (l)->out_h + (size_t)(j) * (p)->sample) * (l)->out_w + (size_t)(i) * (p)->sample)
#define SHORTCUT_FROM_INDEX(p, b, k, j, i)                                                                         \
    ((((size_t)(b) * (p)->fc + (k)) * (p)->fh + (size_t)(j) * (p)->stride) * (p)->fw + (size_t)(i) * (p)->stride)

#endif
