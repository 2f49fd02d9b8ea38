/* [avgpool]: global average pooling, (batch, c, h, w) -> (batch, c). */
#include <stdlib.h>

#include "layers.h"

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    (void)net;
    (void)train;
    int S = l->h * l->w;
    for (int b = 0; b < l->batch; b++)
        for (int c = 0; c < l->c; c++) {
            const float *in = l->input + (size_t)b * l->inputs + (size_t)c * S;
            float s = 0;
            for (int i = 0; i < S; i++) s += in[i];
            l->output[(size_t)b * l->outputs + c] = s / S;
        }
}

static void backward(cdb_layer *l, cdb_network *net)
{
    (void)net;
    if (!l->input_delta) return;
    int S = l->h * l->w;
    for (int b = 0; b < l->batch; b++)
        for (int c = 0; c < l->c; c++) {
            float d = l->delta[(size_t)b * l->outputs + c] / S;
            float *in_delta = l->input_delta + (size_t)b * l->inputs + (size_t)c * S;
            for (int i = 0; i < S; i++) in_delta[i] += d;
        }
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    (void)net;
    if (cdb_cfg_check_unused(r)) return -1;
    l->out_c = l->c;
    l->out_h = l->out_w = 1;
    if (cdb_layer_alloc_output(l, r)) return -1;
    snprintf(l->description, sizeof(l->description), "global %dx%d", l->h, l->w);
    return 0;
}

LAYER_OPS(avgpool, "avg", LAYER_TAKES_IMAGE, 0);
