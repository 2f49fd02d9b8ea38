/* [pos_embed]: adds a learned position embedding (tokens, d) to every
 * sequence of the batch. Not eligible for ChannelDropBack. */
#include <stdlib.h>

#include "layers.h"
#include "pos_embed_layer.h"

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    (void)net;
    (void)train;
    pos_priv *p = l->priv;
    size_t n = (size_t)l->inputs;
    for (int b = 0; b < l->batch; b++) {
        const float *in = l->input + (size_t)b * n;
        float *out = l->output + (size_t)b * n;
        for (size_t i = 0; i < n; i++) out[i] = in[i] + p->embedding->value[i];
    }
}

static void backward(cdb_layer *l, cdb_network *net)
{
    (void)net;
    pos_priv *p = l->priv;
    size_t n = (size_t)l->inputs;
    for (int b = 0; b < l->batch; b++) {
        const float *d = l->delta + (size_t)b * n;
        for (size_t i = 0; i < n; i++) p->embedding->grad[i] += d[i];
        if (l->input_delta)
            for (size_t i = 0; i < n; i++) l->input_delta[(size_t)b * n + i] += d[i];
    }
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    pos_priv *p = cdb_layer_priv(l, sizeof(pos_priv), NULL);
    if (!p) return -1;
    if (cdb_cfg_check_unused(r)) return -1;
    cdb_layer_set_sequence_output(l, l->tokens, l->c);
    if (cdb_layer_alloc_output(l, r)) return -1;
    p->embedding = cdb_layer_add_param(l, "pos_embed", (size_t)l->inputs, 0, 0, 0, 0);
    cdb_init_trunc_normal(p->embedding->value, (size_t)l->inputs, 0.02f, net->seed, l->index, 2);
    cdb_layer_add_io(l, p->embedding->value, (size_t)l->inputs);
    snprintf(l->description, sizeof(l->description), "learned %dx%d", l->tokens, l->c);
    return 0;
}

LAYER_OPS(pos_embed, NULL, LAYER_TAKES_SEQUENCE, 0);
