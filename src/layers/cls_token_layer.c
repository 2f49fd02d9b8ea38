/* [cls_token]: prepends a learned class token to a sequence:
 * (batch, tokens, d) -> (batch, tokens + 1, d). The token (d) is not
 * eligible for ChannelDropBack. */
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "cls_token_layer.h"

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    (void)net;
    (void)train;
    cls_priv *p = l->priv;
    size_t D = (size_t)l->c;
    for (int b = 0; b < l->batch; b++) {
        float *out = l->output + (size_t)b * l->outputs;
        memcpy(out, p->token->value, D * sizeof(float));
        memcpy(out + D, l->input + (size_t)b * l->inputs, (size_t)l->inputs * sizeof(float));
    }
}

static void backward(cdb_layer *l, cdb_network *net)
{
    (void)net;
    cls_priv *p = l->priv;
    size_t D = (size_t)l->c;
    for (int b = 0; b < l->batch; b++) {
        const float *d = l->delta + (size_t)b * l->outputs;
        for (size_t k = 0; k < D; k++) p->token->grad[k] += d[k];
        if (l->input_delta) {
            float *in_delta = l->input_delta + (size_t)b * l->inputs;
            for (int i = 0; i < l->inputs; i++) in_delta[i] += d[D + i];
        }
    }
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    cls_priv *p = cdb_layer_priv(l, sizeof(cls_priv), NULL);
    if (!p) return -1;
    if (cdb_cfg_check_unused(r)) return -1;
    cdb_layer_set_sequence_output(l, l->tokens + 1, l->c);
    if (cdb_layer_alloc_output(l, r)) return -1;
    p->token = cdb_layer_add_param(l, "cls_token", (size_t)l->c, 0, 0, 0, 0);
    cdb_init_trunc_normal(p->token->value, (size_t)l->c, 0.02f, net->seed, l->index, 1);
    cdb_layer_add_io(l, p->token->value, (size_t)l->c);
    snprintf(l->description, sizeof(l->description), "+1 learned token");
    return 0;
}

LAYER_OPS(cls_token, NULL, LAYER_TAKES_SEQUENCE, 0);
