/* [token_pool]: a sequence (batch, tokens, d) becomes one vector (batch, d):
 * mode=cls takes the first token (the class token), mode=mean averages all
 * tokens. */
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "token_pool_layer.h"

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    (void)net;
    (void)train;
    pool_priv *p = l->priv;
    int T = l->tokens, D = l->c;
    for (int b = 0; b < l->batch; b++) {
        const float *in = l->input + (size_t)b * l->inputs;
        float *out = l->output + (size_t)b * D;
        if (!p->mean) {
            memcpy(out, in, (size_t)D * sizeof(float));
            continue;
        }
        for (int d = 0; d < D; d++) out[d] = 0;
        for (int t = 0; t < T; t++)
            for (int d = 0; d < D; d++) out[d] += in[(size_t)t * D + d];
        for (int d = 0; d < D; d++) out[d] /= T;
    }
}

static void backward(cdb_layer *l, cdb_network *net)
{
    (void)net;
    pool_priv *p = l->priv;
    if (!l->input_delta) return;
    int T = l->tokens, D = l->c;
    for (int b = 0; b < l->batch; b++) {
        float *in_delta = l->input_delta + (size_t)b * l->inputs;
        const float *d = l->delta + (size_t)b * D;
        if (!p->mean) {
            for (int k = 0; k < D; k++) in_delta[k] += d[k];
            continue;
        }
        for (int t = 0; t < T; t++)
            for (int k = 0; k < D; k++) in_delta[(size_t)t * D + k] += d[k] / T;
    }
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    (void)net;
    pool_priv *p = cdb_layer_priv(l, sizeof(pool_priv), NULL);
    if (!p) return -1;
    static const char *const modes[] = {"cls", "mean", NULL};
    p->mean = cdb_cfg_choice(r, "mode", modes, 0);
    if (cdb_cfg_check_unused(r)) return -1;
    l->out_c = l->c;
    l->out_h = l->out_w = 1;
    if (cdb_layer_alloc_output(l, r)) return -1;
    snprintf(l->description, sizeof(l->description), "%s of %d tokens", p->mean ? "mean" : "class token", l->tokens);
    return 0;
}

LAYER_OPS(token_pool, NULL, LAYER_TAKES_SEQUENCE, 0);
