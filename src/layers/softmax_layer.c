/* [softmax]: softmax over the input features with the cross-entropy cost
 * against net->truth (a distribution per image: one-hot, or label-smoothed).
 * The loss of a step is the mean over the step's batch, as PyTorch's
 * CrossEntropyLoss, so the gradient is (p - t) / batch. */
#include <math.h>
#include <stdlib.h>

#include "layers.h"
#include "shared_math.h"

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    int n = l->inputs;
    double loss = 0;
    for (int b = 0; b < l->batch; b++)
        loss += softmax_cross_entropy(l->input + (size_t)b * n, l->output + (size_t)b * n,
                                      train ? net->truth + (size_t)b * n : NULL, n);
    if (train) net->loss += loss;
}

static void backward(cdb_layer *l, cdb_network *net)
{
    if (!l->input_delta) return;
    float inv_batch = 1.f / (float)net->batch;
    size_t total = (size_t)l->batch * l->inputs;
    /* Plus what a [cost] after it adds to its delta (zero otherwise): in
     * Darknet's way, an error with respect to the logits. */
    for (size_t i = 0; i < total; i++) l->input_delta[i] += (l->output[i] - net->truth[i]) * inv_batch + l->delta[i];
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    (void)net;
    int groups = cfg_int(r, "groups", 1, 1, 1);
    (void)groups;
    if (cfg_check_unused(r)) return -1;
    l->out_c = l->inputs;
    l->out_h = l->out_w = 1;
    if (layer_alloc_output(l, r)) return -1;
    snprintf(l->description, sizeof(l->description), "%d classes, cross-entropy", l->inputs);
    return 0;
}

LAYER_OPS(softmax, "soft", LAYER_TAKES_IMAGE, 1);
