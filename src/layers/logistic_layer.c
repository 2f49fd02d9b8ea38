/* [logistic]: Darknet's multi-label cost. Each input feature goes through
 * the logistic function on its own (output p = 1 / (1 + e^-x), no softmax)
 * and the cost is the binary cross-entropy of every output against its
 * target, -(t log p + (1 - t) log(1 - p)), summed over the features and
 * averaged over the batch, as Darknet's logistic_x_ent (whose error
 * t - p is the negative of the gradient (p - t) used here). With one-hot
 * targets each class is a yes/no question of its own; top-1 and top-5 rank
 * the outputs as for [softmax]. Computed from the logit, log(1 + e^x) - t x,
 * so that a saturated output gives a finite cost. No CUDA code: in a GPU
 * run it runs on the CPU (the outputs are batch x classes). */
#include <math.h>

#include "layers.h"

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    size_t n = (size_t)l->batch * l->inputs;
    double loss = 0;
    for (size_t i = 0; i < n; i++) {
        float x = l->input[i];
        l->output[i] = x >= 0 ? 1.f / (1.f + expf(-x)) : expf(x) / (1.f + expf(x));
        if (train) {
            double softplus = x > 0 ? x + log1p(exp(-(double)x)) : log1p(exp((double)x));
            loss += softplus - (double)net->truth[i] * x;
        }
    }
    if (train) net->loss += loss;
}

static void backward(cdb_layer *l, cdb_network *net)
{
    if (!l->input_delta) return;
    float inv_batch = 1.f / (float)net->batch;
    size_t n = (size_t)l->batch * l->inputs;
    for (size_t i = 0; i < n; i++) l->input_delta[i] += (l->output[i] - net->truth[i]) * inv_batch;
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    (void)net;
    if (cdb_cfg_check_unused(r)) return -1;
    l->out_c = l->inputs;
    l->out_h = l->out_w = 1;
    if (cdb_layer_alloc_output(l, r)) return -1;
    snprintf(l->description, sizeof(l->description), "%d classes, logistic (binary) cross-entropy", l->inputs);
    return 0;
}

LAYER_OPS_CPU_ONLY(logistic, NULL, LAYER_TAKES_IMAGE, 1);
