/* [tokens]: an image (batch, c, h, w) becomes a sequence of h*w tokens of c
 * features, (batch, h*w, c): the step after a patch-embedding convolution. */
#include "layers.h"

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    (void)net;
    (void)train;
    int C = l->c, T = l->h * l->w;
    for (int b = 0; b < l->batch; b++) {
        const float *in = l->input + (size_t)b * l->inputs;
        float *out = l->output + (size_t)b * l->outputs;
        for (int c = 0; c < C; c++)
            for (int t = 0; t < T; t++) out[(size_t)t * C + c] = in[(size_t)c * T + t];
    }
}

static void backward(cdb_layer *l, cdb_network *net)
{
    (void)net;
    if (!l->input_delta) return;
    int C = l->c, T = l->h * l->w;
    for (int b = 0; b < l->batch; b++) {
        float *in_delta = l->input_delta + (size_t)b * l->inputs;
        const float *d = l->delta + (size_t)b * l->outputs;
        for (int c = 0; c < C; c++)
            for (int t = 0; t < T; t++) in_delta[(size_t)c * T + t] += d[(size_t)t * C + c];
    }
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    (void)net;
    if (cdb_cfg_check_unused(r)) return -1;
    cdb_layer_set_sequence_output(l, l->h * l->w, l->c);
    if (cdb_layer_alloc_output(l, r)) return -1;
    snprintf(l->description, sizeof(l->description), "%dx%d -> %d tokens", l->h, l->w, l->h * l->w);
    return 0;
}

LAYER_OPS(tokens, NULL, LAYER_TAKES_IMAGE, 0);
