/* Running the network: forward and backward through the layers (on the CPU
 * or the GPU), one training step, profiling and the summary. */
#include "network.h"
#include "dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer.h"
#include "schedule.h"
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
            free(l->params[k].moment1);
            free(l->params[k].moment2);
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
    free(net->forward_seconds);
    free(net->skip_scratch);
    free(net->dist_buffer);
    free(net->backward_seconds);
    free(net->workspace);
    free(net->data_path);
    free(net->cfg_path);
    free(net);
}

int cdb_network_enable_profiling(cdb_network *net)
{
    if (!net->forward_seconds) net->forward_seconds = cdb_xcalloc((size_t)net->n, sizeof(double));
    if (!net->backward_seconds) net->backward_seconds = cdb_xcalloc((size_t)net->n, sizeof(double));
    if (!net->forward_seconds || !net->backward_seconds) return -1;
    net->profile = 1;
    return 0;
}

void cdb_network_reset_profile(cdb_network *net)
{
    if (!net->profile) return;
    memset(net->forward_seconds, 0, (size_t)net->n * sizeof(double));
    memset(net->backward_seconds, 0, (size_t)net->n * sizeof(double));
    net->update_seconds = net->dropback_seconds = net->comm_seconds = 0;
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
    for (int i = 0; i < net->n; i++) {
        double t0 = net->profile ? cdb_now_seconds() : 0;
        layer_forward_gpu(&net->layers[i], net, train);
        if (net->profile) {
            cdb_gpu_synchronize();
            net->forward_seconds[i] += cdb_now_seconds() - t0;
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
    for (int i = net->n - 1; i >= 0; i--) {
        double t0 = net->profile ? cdb_now_seconds() : 0;
        layer_backward_gpu(&net->layers[i], net);
        if (net->profile) {
            cdb_gpu_synchronize();
            net->backward_seconds[i] += cdb_now_seconds() - t0;
        }
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
    if (!net->profile) {
        for (int i = 0; i < net->n; i++) net->layers[i].ops->forward(&net->layers[i], net, train);
        return;
    }
    for (int i = 0; i < net->n; i++) {
        double t0 = cdb_now_seconds();
        net->layers[i].ops->forward(&net->layers[i], net, train);
        net->forward_seconds[i] += cdb_now_seconds() - t0;
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
    /* data-parallel runs: each layer's gradients are on their way to the
     * other ranks while the layers below still run their backward */
    int summing = net->ranks > 1 && net->summing_gradients && net->subdivision == net->subdivisions - 1;
    if (summing && cdb_dist_begin_gradients(net)) net->pass_failed = 1;
    for (int i = net->n - 1; i >= 0; i--) {
        double t0 = net->profile ? cdb_now_seconds() : 0;
        net->layers[i].ops->backward(&net->layers[i], net);
        if (net->profile) net->backward_seconds[i] += cdb_now_seconds() - t0;
        if (summing) {
            t0 = net->profile ? cdb_now_seconds() : 0;
            cdb_dist_layer_done(net, i);
            if (net->profile) net->comm_seconds += cdb_now_seconds() - t0;
        }
    }
}

const float *cdb_network_output(const cdb_network *net) { return net->layers[net->n - 1].output; }

float cdb_network_learning_rate(const cdb_network *net) { return cdb_schedule_learning_rate(&net->train, net->step); }

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

static void zero_gradients(cdb_network *net)
{
    for (int i = 0; i < net->nparams; i++) {
        cdb_param *p = net->params[i];
#ifdef GPU
        if (net->gpu) {
            cdb_gpu_zero(net, p->grad, p->size * sizeof(float));
            continue;
        }
#endif
        memset(p->grad, 0, p->size * sizeof(float));
    }
}

/* Subdivision s of the step's batch into the network's input and targets
 * (label smoothing spreads eps over the classes). */
static void load_subdivision(cdb_network *net, const float *images, const int *labels, int s)
{
    size_t first = (size_t)s * net->mini_batch;
    memcpy(net->input, images + first * net->inputs, (size_t)net->mini_batch * net->inputs * sizeof(float));
    int K = net->classes;
    float eps = net->label_smoothing;
    for (int b = 0; b < net->mini_batch; b++) {
        float *t = net->truth + (size_t)b * K;
        for (int k = 0; k < K; k++) t[k] = eps / K;
        t[labels[first + b]] += 1.f - eps;
    }
#ifdef GPU
    if (net->gpu) cdb_gpu_push(net, net->truth, (size_t)net->mini_batch * net->classes * sizeof(float));
#endif
}

/* nan_policy=skip_step: every gradient finite (a finite loss can still
 * have an infinite gradient) */
static int gradients_finite(cdb_network *net)
{
    for (int i = 0; i < net->nparams; i++) {
        cdb_param *p = net->params[i];
#ifdef GPU
        if (net->gpu) cdb_gpu_pull(net, p->grad, p->size * sizeof(float));
#endif
        for (size_t k = 0; k < p->size; k++)
            if (!isfinite(p->grad[k])) return 0;
    }
    return 1;
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

/* The clock at a phase boundary when profiling (else 0). On the GPU the
 * kernels launched so far are waited for first, so that each phase is
 * charged for its own kernels rather than the next phase that synchronises. */
static double clock_if(const cdb_network *net)
{
    if (!net->profile) return 0;
#ifdef GPU
    if (net->gpu) cdb_gpu_synchronize();
#endif
    return cdb_now_seconds();
}

/* One optimizer step, on the CPU or the GPU through the same sequence. */
float cdb_network_train_step(cdb_network *net, const float *images, const int *labels)
{
    net->step_failed = net->step_skipped = 0;
    /* 0. The optimizer's state, allocated by the first step. */
    if (cdb_optimizer_prepare(net)) {
        net->step_failed = 1;
        return NAN;
    }
    /* 1. ChannelDropBack: this step's selection and masks. */
    double t0 = clock_if(net);
    cdb_dropback_begin_step(net);
    if (net->profile) net->dropback_seconds += clock_if(net) - t0;

    /* 2. Forward and backward per subdivision; the gradients add up (and
     * on several CPU ranks, the last subdivision's backward starts their
     * sum over the ranks, 3.). */
    zero_gradients(net);
#ifdef GPU
    net->summing_gradients = net->ranks > 1 && !net->gpu;
#else
    net->summing_gradients = net->ranks > 1;
#endif
    double loss = 0;
    for (int s = 0; s < net->subdivisions; s++) {
        net->subdivision = s;
        load_subdivision(net, images, labels, s);
        net->loss = 0;
        cdb_network_forward(net, 1);
        cdb_network_backward(net);
        loss += net->loss;
    }
    /* a failure inside the passes (out of memory, a CUDA error): recorded,
     * and the weights are left untouched; on several ranks every rank
     * learns of it, and of the loss of the whole batch (the sum of theirs) */
    double state[2] = {loss, cdb_network_pass_failed(net) ? 1.0 : 0.0};
    if (net->ranks > 1 && cdb_dist_sum_doubles(state, 2)) {
        net->step_failed = 1;
        return NAN;
    }
    float mean_loss = (float)(state[0] / net->batch);
    int finite = isfinite(mean_loss);
    /* 3. Data-parallel runs: the gradients summed over the ranks (each
     * rank's already divided by the whole batch), the same bits on all: the
     * buckets the backward pass started, finished (and used only when the
     * step goes on), or on GPU ranks the sum of them all now. */
    if (net->ranks > 1) {
        t0 = clock_if(net);
        int bad = net->summing_gradients ? cdb_dist_finish_gradients(net, finite && state[1] == 0)
                                         : (finite && state[1] == 0 ? cdb_dist_sum_gradients(net) : 0);
        net->summing_gradients = 0;
        if (net->profile) net->comm_seconds += clock_if(net) - t0;
        if (bad) {
            net->step_failed = 1;
            return NAN;
        }
    }
    if (state[1] != 0) {
        if (!cdb_network_pass_failed(net)) cdb_set_error("the step failed on another rank (its output says why)");
        net->step_failed = 1;
        return NAN;
    }
    if (finite && net->train.nan_policy == 1) finite = gradients_finite(net);
    if (!finite) {
        net->step_skipped = net->train.nan_policy == 1;
        if (net->step_skipped) { /* the step is spent, its update dropped */
            net->skipped_steps++;
            net->step++;
            net->seen += (uint64_t)net->batch;
        }
        return NAN; /* weights untouched */
    }

    /* 4. The masks, on the summed gradient. */
    t0 = clock_if(net);
    cdb_dropback_apply_masks(net);
    double t1 = clock_if(net);
    if (net->profile) net->dropback_seconds += t1 - t0;

    /* 5. The optimizer, at this step's learning rate. */
    float lr = cdb_schedule_learning_rate(&net->train, net->step);
    net->step++;
    cdb_optimizer_update(net, lr, net->step);
#ifdef GPU
    if (cdb_network_pass_failed(net)) { /* the update's kernels */
        net->step_failed = 1;
        return NAN;
    }
#endif
    if (net->profile) net->update_seconds += clock_if(net) - t1;

    /* 6. Counters (the draw counted the dropback statistics). */
    net->seen += (uint64_t)net->batch;
    return mean_loss;
}

void cdb_network_print_summary(const cdb_network *net, FILE *out)
{
    fprintf(out, "%5s %-14s %-34s %16s %16s %10s %s\n", "layer", "type", "details", "input", "output", "params",
            "dropback");
    size_t total = 0;
    for (int i = 0; i < net->n; i++) {
        const cdb_layer *l = &net->layers[i];
        size_t count = 0;
        const char *db = "-";
        for (int k = 0; k < l->nparams; k++) {
            count += l->params[k].size;
            if (l->params[k].eligible) db = cdb_dropback_takes_part(&l->params[k]) ? "yes" : "no";
        }
        total += count;
        char in[32], outs[32];
        if (l->tokens)
            snprintf(in, sizeof(in), "%d tok x %d", l->tokens, l->c);
        else
            snprintf(in, sizeof(in), "%dx%dx%d", l->c, l->h, l->w);
        if (l->out_tokens)
            snprintf(outs, sizeof(outs), "%d tok x %d", l->out_tokens, l->out_c);
        else
            snprintf(outs, sizeof(outs), "%dx%dx%d", l->out_c, l->out_h, l->out_w);
        char rate[32] = "";
        for (int k = 0; k < l->nparams; k++)
            if (cdb_dropback_takes_part(&l->params[k]))
                snprintf(rate, sizeof(rate), " (p=%.2f)", cdb_dropback_channel_rate(&l->params[k]));
        fprintf(out, "%5d %-14s %-34s %16s %16s %10zu %s%s\n", i, l->ops->name, l->description, in, outs, count, db,
                rate);
    }
    size_t macs = 0;
    for (int i = 0; i < net->n; i++) macs += net->layers[i].flops;
    fprintf(out, "total parameters: %zu\n", total);
    fprintf(out, "forward: %.4g G multiply-adds per image (convolutions, connected and attention layers)\n", macs / 1e9);
    const train_config *t = &net->train;
    fprintf(out, "semantics: %s: burn_in %s, weight decay %s biases and norm scales, batch norm momentum %g\n",
            t->darknet ? "Darknet's (darknet=1)" : "the reference's (PyTorch)",
            t->darknet ? "lr*(step/burn_in)^power" : "linear", t->decay_norm_bias ? "on" : "not on",
            t->darknet ? BN_MOMENTUM_DARKNET : BN_MOMENTUM);
    if (net->gpu) {
        int on_host = 0;
        for (int i = 0; i < net->n; i++)
            if (!net->layers[i].ops->forward_gpu || !net->layers[i].ops->backward_gpu) {
                if (!on_host++) fprintf(out, "on the CPU (no CUDA code for the type; copies to and from the device):");
                fprintf(out, " %d [%s]", i, net->layers[i].ops->name);
            }
        if (on_host) fprintf(out, "\n");
    }
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
