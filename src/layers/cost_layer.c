/* [cost]: Darknet's cost layer after [softmax], as AlexeyAB's classifier
 * cfgs end. In Darknet the softmax layer's error (truth - p, the
 * cross-entropy gradient with respect to the logits) has the cost layer's
 * scale * (truth - p) added to it, so the classifier learns from
 * (1 + scale) times the cross-entropy gradient. cdbnet does exactly that:
 * the output is the softmax's probabilities (what Darknet predicts with,
 * skipping cost layers), backward adds scale * (p - truth) / batch to the
 * softmax's delta, which [softmax] passes on with its own, and the loss of
 * a training pass is (1 + scale) x the cross-entropy, the objective whose
 * gradient that is (Darknet prints cross-entropy + scale x the squared
 * error, which is not the objective it descends). Only type=sse is accepted: Darknet's
 * other types (masked, smooth) serve its detectors. */
#include <math.h>
#include <string.h>

#include "cost_layer.h"
#include "layers.h"

double cdb_cost_extra_loss(const cdb_layer *l, const cdb_network *net, const float *p)
{
    const cost_priv *c = l->priv;
    double ce = 0;
    size_t n = (size_t)l->batch * l->inputs;
    for (size_t i = 0; i < n; i++)
        if (net->truth[i] > 0) ce -= net->truth[i] * log(p[i] > 1e-37f ? p[i] : 1e-37f);
    return c->scale * ce;
}

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    memcpy(l->output, l->input, (size_t)l->batch * l->outputs * sizeof(float));
    if (train) net->loss += cdb_cost_extra_loss(l, net, l->input);
}

static void backward(cdb_layer *l, cdb_network *net)
{
    cost_priv *p = l->priv;
    float k = p->scale / (float)net->batch;
    size_t n = (size_t)l->batch * l->inputs;
    for (size_t i = 0; i < n; i++) l->input_delta[i] += (l->input[i] - net->truth[i]) * k;
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    cost_priv *p = cdb_layer_priv(l, sizeof(cost_priv), NULL);
    if (!p) return -1;
    static const char *const types[] = {"sse", NULL};
    cdb_cfg_choice(r, "type", types, 0);
    p->scale = cdb_cfg_float(r, "scale", 1.f, 0.f, 1000.f);
    if (cdb_cfg_check_unused(r)) return -1;
    if (l->index == 0 || strcmp(net->layers[l->index - 1].ops->name, "softmax")) {
        cdb_cfg_fail(r, NULL, "[cost] is supported only right after [softmax] (Darknet's classifier form); Darknet's "
                          "cost on other outputs serves its detectors and is not implemented");
        return -1;
    }
    if (cdb_layer_alloc_same_shape(l, r)) return -1;
    snprintf(l->description, sizeof(l->description), "sse, scale %g: gradient x%g", p->scale, 1 + p->scale);
    return 0;
}

LAYER_OPS(cost, NULL, LAYER_TAKES_ANY, 1);
