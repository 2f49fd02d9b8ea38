/* [dropout]: zeroes each input with `probability` during training and scales
 * the rest by 1/(1-probability); the identity at inference. The masks come
 * from the run's dropout stream for (step, subdivision, layer). */
#include <stdlib.h>

#include "layers.h"
#include "dropout_layer.h"

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    dropout_priv *p = l->priv;
    size_t n = (size_t)l->batch * l->inputs;
    if (!train || p->probability == 0) {
        for (size_t i = 0; i < n; i++) p->keep[i] = 1;
        for (size_t i = 0; i < n; i++) l->output[i] = l->input[i];
        return;
    }
    cdb_rng rng = cdb_layer_pass_rng(l, net);
    float scale = 1.f / (1.f - p->probability);
    for (size_t i = 0; i < n; i++) {
        p->keep[i] = cdb_rng_uniform(&rng) >= p->probability;
        l->output[i] = p->keep[i] ? l->input[i] * scale : 0;
    }
}

static void backward(cdb_layer *l, cdb_network *net)
{
    (void)net;
    dropout_priv *p = l->priv;
    if (!l->input_delta) return;
    float scale = 1.f / (1.f - p->probability);
    size_t n = (size_t)l->batch * l->inputs;
    for (size_t i = 0; i < n; i++)
        if (p->keep[i]) l->input_delta[i] += l->delta[i] * (p->probability > 0 ? scale : 1.f);
}

static void destroy(cdb_layer *l)
{
    dropout_priv *p = l->priv;
    free(p->keep);
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    (void)net;
    dropout_priv *p = cdb_layer_priv(l, sizeof(dropout_priv), destroy);
    if (!p) return -1;
    p->probability = cdb_cfg_float(r, "probability", 0.5f, 0.f, 0.99f);
    if (cdb_cfg_check_unused(r)) return -1;
    if (cdb_layer_alloc_same_shape(l, r)) return -1;
    p->keep = cdb_xcalloc((size_t)l->batch * l->inputs, 1);
    snprintf(l->description, sizeof(l->description), "p=%.2f", p->probability);
    return 0;
}

LAYER_OPS(dropout, NULL, LAYER_TAKES_ANY, 0);
