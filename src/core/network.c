/* Running the network: forward and backward through the layers (on the CPU
 * or the GPU), with the timing and the per-layer hook its runner asks for
 * (net->pass). The training step is the trainer's (src/train/trainer.c). */
#include "network.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef GPU
#include "cuda_utils.h"
#endif

void cdb_network_free(cdb_network *net)
{
    if (!net) return;
#ifdef GPU
    if (net->gpu) cdb_gpu_release(net);
#endif
    for (int i = 0; i < net->n; i++) {
        cdb_layer *l = &net->layers[i];
        if (l->destroy) l->destroy(l);
        free(l->priv);
        for (int k = 0; k < l->nparams; k++) {
            free(l->params[k].value);
            free(l->params[k].grad);
            cdb_dropback_detach(&l->params[k]);
        }
        free(l->output);
        free(l->delta);
    }
    free(net->layers);
    free(net->params);
    free(net->input);
    free(net->truth);
    free(net->input_delta);
    free(net->skip_scratch);
    free(net->workspace);
    cdb_cfg_free(net->settings);
    free(net->data_path);
    free(net->cfg_path);
    free(net);
}

#ifdef GPU
/* A layer type without CUDA code runs on the CPU inside a GPU run: what it
 * reads (its input, parameters, output gradient and the input gradient it
 * adds to) comes down from the device twins and what it writes goes back up.
 * It reads no other layer's arrays (a type that does, as [shortcut] and
 * [route], needs its GPU twin). */
static void pull_params(cdb_network *net, cdb_layer *l, int grads)
{
    for (int k = 0; k < l->nparams; k++) {
        cdb_param *p = &l->params[k];
        cdb_gpu_pull(net, grads ? p->grad : p->value, p->size * sizeof(float));
    }
}

static void layer_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    if (l->ops->forward_gpu) {
        l->ops->forward_gpu(l, net, train);
        return;
    }
    cdb_gpu_pull(net, l->input, (size_t)l->batch * l->inputs * sizeof(float));
    pull_params(net, l, 0);
    l->ops->forward(l, net, train);
    cdb_gpu_push(net, l->output, (size_t)l->batch * l->outputs * sizeof(float));
}

static void layer_backward_gpu(cdb_layer *l, cdb_network *net)
{
    if (l->ops->backward_gpu) {
        l->ops->backward_gpu(l, net);
        return;
    }
    size_t in_bytes = (size_t)l->batch * l->inputs * sizeof(float);
    cdb_gpu_pull(net, l->delta, (size_t)l->batch * l->outputs * sizeof(float));
    if (l->input_delta) cdb_gpu_pull(net, l->input_delta, in_bytes);
    pull_params(net, l, 1);
    l->ops->backward(l, net);
    if (l->input_delta) cdb_gpu_push(net, l->input_delta, in_bytes);
    for (int k = 0; k < l->nparams; k++) cdb_gpu_push(net, l->params[k].grad, l->params[k].size * sizeof(float));
}

/* The network on its device: the input goes up, the last layer's output
 * (class probabilities) comes back down. */
static void network_forward_gpu(cdb_network *net, int train)
{
    cdb_gpu_push(net, net->input, (size_t)net->mini_batch * net->inputs * sizeof(float));
    double *seconds = net->pass.forward_seconds;
    for (int i = 0; i < net->n; i++) {
        double t0 = seconds ? cdb_now_seconds() : 0;
        layer_forward_gpu(&net->layers[i], net, train);
        if (seconds) {
            cdb_gpu_synchronize();
            seconds[i] += cdb_now_seconds() - t0;
        }
    }
    cdb_layer *last = &net->layers[net->n - 1];
    cdb_gpu_pull(net, last->output, (size_t)last->batch * last->outputs * sizeof(float));
}

static void network_backward_gpu(cdb_network *net)
{
    for (int i = 0; i < net->n; i++) {
        cdb_layer *l = &net->layers[i];
        cdb_gpu_zero(net, l->delta, (size_t)l->batch * l->outputs * sizeof(float));
    }
    size_t input_bytes = (size_t)net->mini_batch * net->inputs * sizeof(float);
    if (net->input_delta) cdb_gpu_zero(net, net->input_delta, input_bytes);
    double *seconds = net->pass.backward_seconds;
    for (int i = net->n - 1; i >= 0; i--) {
        double t0 = seconds ? cdb_now_seconds() : 0;
        layer_backward_gpu(&net->layers[i], net);
        if (seconds) {
            cdb_gpu_synchronize();
            seconds[i] += cdb_now_seconds() - t0;
        }
        if (net->pass.layer_done) net->pass.layer_done(net->pass.ctx, i);
    }
    if (net->input_delta) cdb_gpu_pull(net, net->input_delta, input_bytes);
}
#endif

void cdb_network_forward(cdb_network *net, int train)
{
#ifdef GPU
    if (net->gpu) {
        network_forward_gpu(net, train);
        return;
    }
#endif
    double *seconds = net->pass.forward_seconds;
    if (!seconds) {
        for (int i = 0; i < net->n; i++) net->layers[i].ops->forward(&net->layers[i], net, train);
        return;
    }
    for (int i = 0; i < net->n; i++) {
        double t0 = cdb_now_seconds();
        net->layers[i].ops->forward(&net->layers[i], net, train);
        seconds[i] += cdb_now_seconds() - t0;
    }
}

void cdb_network_backward(cdb_network *net)
{
#ifdef GPU
    if (net->gpu) {
        network_backward_gpu(net);
        return;
    }
#endif
    for (int i = 0; i < net->n; i++) {
        cdb_layer *l = &net->layers[i];
        memset(l->delta, 0, (size_t)l->batch * l->outputs * sizeof(float));
    }
    if (net->input_delta) memset(net->input_delta, 0, (size_t)net->mini_batch * net->inputs * sizeof(float));
    double *seconds = net->pass.backward_seconds;
    for (int i = net->n - 1; i >= 0; i--) {
        double t0 = seconds ? cdb_now_seconds() : 0;
        net->layers[i].ops->backward(&net->layers[i], net);
        if (seconds) seconds[i] += cdb_now_seconds() - t0;
        if (net->pass.layer_done) net->pass.layer_done(net->pass.ctx, i);
    }
}

const float *cdb_network_output(const cdb_network *net) { return net->layers[net->n - 1].output; }

int cdb_network_enable_input_gradient(cdb_network *net)
{
    if (!net->input_delta) net->input_delta = cdb_xcalloc((size_t)net->mini_batch * net->inputs, sizeof(float));
    if (!net->input_delta) return -1;
    net->layers[0].input_delta = net->input_delta;
    return 0;
}

int cdb_network_pass_failed(cdb_network *net)
{
#ifdef GPU
    if (net->gpu && cdb_gpu_failed()) return 1;
#endif
    return net->pass_failed;
}

int cdb_network_first_non_finite_output(cdb_network *net, size_t *index)
{
    for (int i = 0; i < net->n; i++) {
        cdb_layer *l = &net->layers[i];
        size_t n = (size_t)l->batch * l->outputs;
#ifdef GPU
        if (net->gpu) cdb_gpu_pull(net, l->output, n * sizeof(float));
#endif
        for (size_t k = 0; k < n; k++)
            if (!isfinite(l->output[k])) {
                *index = k;
                return i;
            }
    }
    return -1;
}

int cdb_network_state_hash(cdb_network *net, uint64_t hash[2])
{
#ifdef GPU
    /* the device holds what the optimizer produced; the host copies are
     * refreshed only when asked */
    if (net->gpu && cdb_network_sync_to_host(net)) return -1;
#endif
    hash[0] = hash[1] = CDB_HASH_START;
    for (int i = 0; i < net->nparams; i++) {
        const cdb_param *p = net->params[i];
        hash[0] = cdb_hash_bytes(hash[0], p->value, p->size * sizeof(float));
        dropback_tensor_stats st;
        if (cdb_dropback_tensor_stats(p, &st)) {
            hash[1] = cdb_hash_bytes(hash[1], &st.selected, sizeof(st.selected));
            hash[1] = cdb_hash_bytes(hash[1], st.drop_count, (size_t)st.mask_channels * sizeof(uint32_t));
        }
    }
    return 0;
}
