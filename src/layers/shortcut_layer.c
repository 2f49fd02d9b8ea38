/* [shortcut]: residual sum of the previous layer and the layer named by
 * `from` (same shape), then the activation. */
#include <stdlib.h>

#include "activations.h"
#include "layers.h"
#include "shortcut_layer.h"

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    (void)train;
    shortcut_priv *p = l->priv;
    const float *other = net->layers[p->from].output;
    float *z = p->act == ACT_LINEAR ? l->output : p->preact;
    size_t n = (size_t)l->batch * l->outputs;
    for (size_t i = 0; i < n; i++) z[i] = l->input[i] + other[i];
    if (p->act != ACT_LINEAR) activate_array(p->act, z, l->output, n);
}

static void backward(cdb_layer *l, cdb_network *net)
{
    shortcut_priv *p = l->priv;
    size_t n = (size_t)l->batch * l->outputs;
    if (p->act != ACT_LINEAR) gradient_array(p->act, p->preact, l->delta, l->delta, n);
    float *other = net->layers[p->from].delta;
    for (size_t i = 0; i < n; i++) other[i] += l->delta[i];
    if (l->input_delta)
        for (size_t i = 0; i < n; i++) l->input_delta[i] += l->delta[i];
}

static void destroy(cdb_layer *l)
{
    shortcut_priv *p = l->priv;
    free(p->preact);
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    shortcut_priv *p = layer_priv(l, sizeof(shortcut_priv), destroy);
    if (!p) return -1;
    p->from = layer_read_from(r, l, "the layer to add");
    if (p->from < 0) return -1;
    p->act = layer_read_activation(r, ACT_LINEAR);
    if (cfg_check_unused(r)) return -1;
    const cdb_layer *src = &net->layers[p->from];
    if (src->out_c != l->c || src->out_h != l->h || src->out_w != l->w || src->out_tokens != l->tokens) {
        cfg_fail(r, "from", "layer %d has shape %dx%dx%d but the previous layer has %dx%dx%d", p->from, src->out_c,
                 src->out_h, src->out_w, l->c, l->h, l->w);
        return -1;
    }
    l->out_c = l->c;
    l->out_h = l->h;
    l->out_w = l->w;
    l->out_tokens = l->tokens;
    if (layer_alloc_output(l, r)) return -1;
    if (p->act != ACT_LINEAR) p->preact = xcalloc((size_t)l->batch * l->outputs, sizeof(float));
    snprintf(l->description, sizeof(l->description), "from %d %s", p->from, activation_name(p->act));
    return 0;
}

LAYER_OPS(shortcut, NULL, LAYER_TAKES_ANY, 0);
