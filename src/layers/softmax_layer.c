/* [softmax]: softmax over the input features with the cross-entropy cost
 * against net->truth (a distribution per image: one-hot, or label-smoothed).
 * The loss of a step is the mean over the step's batch, as PyTorch's
 * CrossEntropyLoss, so the gradient is (p - t) / batch; with a pass's
 * per-image factors (class weights, net->pass.sample_scale) each image's
 * loss and gradient are multiplied by its factor. Darknet's
 * temperature T takes the softmax of x / T, and the gradient is then
 * (p - t) / (batch T): the gradient of that loss (Darknet passes (t - p) on
 * without the 1 / T). */
#include <math.h>
#include <stdlib.h>

#include "layers.h"
#include "shared_math.h"
#include "softmax_layer.h"

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    int n = l->inputs;
    float inv_temp = 1.f / ((const softmax_priv *)l->priv)->temperature;
    double loss = 0;
    const float *scale = net->pass.sample_scale;
    for (int b = 0; b < l->batch; b++) {
        double e = softmax_cross_entropy(l->input + (size_t)b * n, l->output + (size_t)b * n,
                                         train ? net->truth + (size_t)b * n : NULL, n, inv_temp);
        loss += scale ? scale[b] * e : e;
    }
    if (train) net->loss += loss;
}

static void backward(cdb_layer *l, cdb_network *net)
{
    if (!l->input_delta) return;
    float inv_batch = 1.f / (float)net->batch, inv_temp = 1.f / ((const softmax_priv *)l->priv)->temperature;
    size_t total = (size_t)l->batch * l->inputs;
    /* Plus what a [cost] after it adds to its delta (zero otherwise): in
     * Darknet's way, an error with respect to the scaled logits x / T. */
    const float *scale = net->pass.sample_scale;
    if (scale) { /* class weights: each image's gradient times its factor */
        for (int b = 0; b < l->batch; b++)
            for (size_t i = (size_t)b * l->inputs; i < (size_t)(b + 1) * l->inputs; i++)
                l->input_delta[i] += ((l->output[i] - net->truth[i]) * inv_batch * scale[b] + l->delta[i]) * inv_temp;
    } else if (inv_temp == 1.f)
        for (size_t i = 0; i < total; i++) l->input_delta[i] += (l->output[i] - net->truth[i]) * inv_batch + l->delta[i];
    else
        for (size_t i = 0; i < total; i++)
            l->input_delta[i] += ((l->output[i] - net->truth[i]) * inv_batch + l->delta[i]) * inv_temp;
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    (void)net;
    softmax_priv *p = cdb_layer_priv(l, sizeof(softmax_priv), NULL);
    if (!p) return -1;
    int groups = cdb_cfg_int(r, "groups", 1, 1, 1);
    (void)groups;
    p->temperature = cdb_cfg_float(r, "temperature", 1.f, 0.001f, 1000.f);
    if (cdb_cfg_check_unused(r)) return -1;
    l->out_c = l->inputs;
    l->out_h = l->out_w = 1;
    if (cdb_layer_alloc_output(l, r)) return -1;
    if (p->temperature != 1.f)
        snprintf(l->description, sizeof(l->description), "%d classes, temperature %g, cross-entropy", l->inputs,
                 p->temperature);
    else
        snprintf(l->description, sizeof(l->description), "%d classes, cross-entropy", l->inputs);
    return 0;
}

LAYER_OPS(softmax, "soft", LAYER_TAKES_IMAGE, 1);
