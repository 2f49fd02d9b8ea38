/* [activation]: an activation on its own (AlexeyAB Darknet's layer), any
 * of the `activation=` functions, element-wise on images or token
 * sequences. The gradient is taken from the input, which the previous
 * layer keeps. */
#include "activation_layer.h"
#include "layers.h"

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    (void)net;
    (void)train;
    activation_priv *p = l->priv;
    cdb_activate_array(p->act, l->input, l->output, (size_t)l->batch * l->outputs);
}

static void backward(cdb_layer *l, cdb_network *net)
{
    (void)net;
    activation_priv *p = l->priv;
    if (!l->input_delta) return;
    size_t n = (size_t)l->batch * l->outputs;
    cdb_gradient_array(p->act, l->input, l->delta, l->delta, n);
    for (size_t i = 0; i < n; i++) l->input_delta[i] += l->delta[i];
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    (void)net;
    activation_priv *p = cdb_layer_priv(l, sizeof(activation_priv), NULL);
    if (!p) return -1;
    p->act = cdb_layer_read_activation(r, ACT_LINEAR);
    if (cdb_cfg_check_unused(r)) return -1;
    if (cdb_layer_alloc_same_shape(l, r)) return -1;
    snprintf(l->description, sizeof(l->description), "%s", cdb_activation_name(p->act));
    return 0;
}

LAYER_OPS(activation, NULL, LAYER_TAKES_ANY, 0);
