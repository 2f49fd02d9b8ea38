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
    int eligible;       /* declared by the layer: a weight that multiplies its input */
    int decay;          /* weight decay applies to this tensor */

    /* ChannelDropBack, resolved when the network is built. */
    int dropback_override; /* -1: follow [net]; 0/1 from the layer's channel_dropback */
    float channel_rate;    /* drop probability of each channel */
    int dropback;          /* takes part in layer selection */

    /* This step's mask (valid after cdb_dropback_draw). */
    int selected;
    float keep;         /* kept channels / channels; 1 when not selected */
    uint8_t *dropped;   /* (mask_channels) 1 = dropped this step */
    int mask_channels;  /* channels (axis in) or rows (axis out) */

    /* Where dropback acted, summed over the draws of this process (the
     * run's dropback CSV and heat map): draws, how many selected it, the
     * sum of keep over those, and per channel how many dropped it. */
    long draws, times_selected;
    double kept_sum;
    uint32_t *drop_count; /* (mask_channels) */
} cdb_param;

#endif
