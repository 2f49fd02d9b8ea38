/* Running the network: forward, backward, one optimizer step, the learning
 * rate schedule, and the helpers layers use to declare what they own. */
#include "network.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "optimizer.h"
#ifdef GPU
#include "cuda_utils.h"
#endif

void network_enable_profiling(cdb_network *net)
{
    net->profile = 1;
    if (!net->forward_seconds) net->forward_seconds = xcalloc((size_t)net->n, sizeof(double));
    if (!net->backward_seconds) net->backward_seconds = xcalloc((size_t)net->n, sizeof(double));
}

void network_reset_profile(cdb_network *net)
{
    if (!net->profile) return;
    memset(net->forward_seconds, 0, (size_t)net->n * sizeof(double));
    memset(net->backward_seconds, 0, (size_t)net->n * sizeof(double));
    net->update_seconds = net->dropback_seconds = 0;
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
        gpu_pull(net, grads ? p->grad : p->value, p->size * sizeof(float));
    }
}

static void layer_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    if (l->ops->forward_gpu) {
        l->ops->forward_gpu(l, net, train);
        return;
    }
    gpu_pull(net, l->input, (size_t)l->batch * l->inputs * sizeof(float));
    pull_params(net, l, 0);
    l->ops->forward(l, net, train);
    gpu_push(net, l->output, (size_t)l->batch * l->outputs * sizeof(float));
}

static void layer_backward_gpu(cdb_layer *l, cdb_network *net)
{
    if (l->ops->backward_gpu) {
        l->ops->backward_gpu(l, net);
        return;
    }
    size_t in_bytes = (size_t)l->batch * l->inputs * sizeof(float);
    gpu_pull(net, l->delta, (size_t)l->batch * l->outputs * sizeof(float));
    if (l->input_delta) gpu_pull(net, l->input_delta, in_bytes);
    pull_params(net, l, 1);
    l->ops->backward(l, net);
    if (l->input_delta) gpu_push(net, l->input_delta, in_bytes);
    for (int k = 0; k < l->nparams; k++) gpu_push(net, l->params[k].grad, l->params[k].size * sizeof(float));
}

/* The network on its device: the input goes up, the last layer's output
 * (class probabilities) comes back down. */
static void network_forward_gpu(cdb_network *net, int train)
{
    gpu_push(net, net->input, (size_t)net->mini_batch * net->inputs * sizeof(float));
    for (int i = 0; i < net->n; i++) {
        double t0 = net->profile ? now_seconds() : 0;
        layer_forward_gpu(&net->layers[i], net, train);
        if (net->profile) {
            gpu_synchronize();
            net->forward_seconds[i] += now_seconds() - t0;
        }
    }
    cdb_layer *last = &net->layers[net->n - 1];
    gpu_pull(net, last->output, (size_t)last->batch * last->outputs * sizeof(float));
}

static void network_backward_gpu(cdb_network *net)
{
    for (int i = 0; i < net->n; i++) {
        cdb_layer *l = &net->layers[i];
        gpu_zero(net, l->delta, (size_t)l->batch * l->outputs * sizeof(float));
    }
    size_t input_bytes = (size_t)net->mini_batch * net->inputs * sizeof(float);
    if (net->input_delta) gpu_zero(net, net->input_delta, input_bytes);
    for (int i = net->n - 1; i >= 0; i--) {
        double t0 = net->profile ? now_seconds() : 0;
        layer_backward_gpu(&net->layers[i], net);
        if (net->profile) {
            gpu_synchronize();
            net->backward_seconds[i] += now_seconds() - t0;
        }
    }
    if (net->input_delta) gpu_pull(net, net->input_delta, input_bytes);
}
#endif

void network_forward(cdb_network *net, int train)
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
        double t0 = now_seconds();
        net->layers[i].ops->forward(&net->layers[i], net, train);
        net->forward_seconds[i] += now_seconds() - t0;
    }
}

void network_backward(cdb_network *net)
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
    for (int i = net->n - 1; i >= 0; i--) {
        double t0 = net->profile ? now_seconds() : 0;
        net->layers[i].ops->backward(&net->layers[i], net);
        if (net->profile) net->backward_seconds[i] += now_seconds() - t0;
    }
}

const float *network_output(const cdb_network *net) { return net->layers[net->n - 1].output; }

float network_learning_rate(const cdb_network *net)
{
    const train_config *t = &net->train;
    int step = net->step;
    if (t->burn_in > 0 && step < t->burn_in) return t->learning_rate * (float)(step + 1) / (float)t->burn_in;
    float lr = t->learning_rate;
    switch (t->policy) {
    case POLICY_CONSTANT: return lr;
    case POLICY_STEPS:
        for (int i = 0; i < t->nsteps && step >= t->steps[i]; i++) lr *= t->scales[i];
        return lr;
    case POLICY_POLY: {
        double progress = (double)step / t->max_batches;
        return (float)(lr * pow(1.0 - (progress > 1 ? 1 : progress), t->power));
    }
    case POLICY_COSINE: {
        int span = t->max_batches - t->burn_in;
        double progress = span > 0 ? (double)(step - t->burn_in) / span : 1.0;
        if (progress > 1) progress = 1;
        return (float)(t->learning_rate_min + 0.5 * (lr - t->learning_rate_min) * (1 + cos(M_PI * progress)));
    }
    }
    return lr;
}

static float *skip_scratch(cdb_network *net, size_t floats)
{
    if (floats > net->skip_scratch_floats) {
        free(net->skip_scratch);
        net->skip_scratch = xmalloc(floats * sizeof(float));
        net->skip_scratch_floats = floats;
    }
    return net->skip_scratch;
}

/* Indices of the kept entries of the first n (channel) entries of dropped,
 * each expanded to `inner` consecutive indices. */
static int kept_indices(const uint8_t *dropped, int n, int inner, int *out)
{
    int count = 0;
    for (int c = 0; c < n; c++)
        if (!dropped[c])
            for (int k = 0; k < inner; k++) out[count++] = c * inner + k;
    return count;
}

void weight_grad_gemm(cdb_network *net, const cdb_param *p, int row_base, int trans_a, int trans_b, int M, int N, int K,
                      const float *A, int lda, const float *B, int ldb, float *C, int ldc)
{
    /* The fixed-order GEMM (gemm.h): a kept channel's gradient has the same
     * bits whether or not the dropped ones are computed beside it. */
    if (!dropback_skips(&net->dropback, p)) {
        gemm_fixed(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc,
                   skip_scratch(net, gemm_fixed_workspace(M, N)));
        return;
    }
    size_t work = gemm_fixed_workspace(M, N);
    if (net->dropback.axis == DROPBACK_AXIS_IN) {
        /* Kept columns of C; op(B) loses the matching columns. */
        float *scratch = skip_scratch(net, work + (size_t)K * N + (size_t)M * N + (size_t)N);
        float *Bk = scratch + work, *Ck = Bk + (size_t)K * N;
        int *cols = (int *)(Ck + (size_t)M * N);
        int n = kept_indices(p->dropped, p->channels, p->inner, cols);
        if (trans_b)
            for (int j = 0; j < n; j++) memcpy(Bk + (size_t)j * K, B + (size_t)cols[j] * ldb, (size_t)K * sizeof(float));
        else
            for (int k = 0; k < K; k++)
                for (int j = 0; j < n; j++) Bk[(size_t)k * n + j] = B[(size_t)k * ldb + cols[j]];
        for (int i = 0; i < M; i++)
            for (int j = 0; j < n; j++) Ck[(size_t)i * n + j] = C[(size_t)i * ldc + cols[j]];
        gemm_fixed(trans_a, trans_b, M, n, K, A, lda, Bk, trans_b ? K : n, Ck, n, scratch);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < n; j++) C[(size_t)i * ldc + cols[j]] = Ck[(size_t)i * n + j];
    } else {
        /* Kept rows of C; op(A) loses the matching rows. */
        float *scratch = skip_scratch(net, work + (size_t)K * M + (size_t)M * N + (size_t)M);
        float *Ak = scratch + work, *Ck = Ak + (size_t)K * M;
        int *rows = (int *)(Ck + (size_t)M * N);
        int m = kept_indices(p->dropped + row_base, M, 1, rows);
        if (trans_a)
            for (int k = 0; k < K; k++)
                for (int i = 0; i < m; i++) Ak[(size_t)k * m + i] = A[(size_t)k * lda + rows[i]];
        else
            for (int i = 0; i < m; i++) memcpy(Ak + (size_t)i * K, A + (size_t)rows[i] * lda, (size_t)K * sizeof(float));
        for (int i = 0; i < m; i++) memcpy(Ck + (size_t)i * N, C + (size_t)rows[i] * ldc, (size_t)N * sizeof(float));
        gemm_fixed(trans_a, trans_b, m, N, K, Ak, trans_a ? m : K, B, ldb, Ck, N, scratch);
        for (int i = 0; i < m; i++) memcpy(C + (size_t)rows[i] * ldc, Ck + (size_t)i * N, (size_t)N * sizeof(float));
    }
}

void network_enable_input_gradient(cdb_network *net)
{
    if (!net->input_delta) net->input_delta = xcalloc((size_t)net->mini_batch * net->inputs, sizeof(float));
    net->layers[0].input_delta = net->input_delta;
}

void network_disable_dropback(cdb_network *net)
{
    net->dropback.enabled = 0;
    for (int i = 0; i < net->nparams; i++) {
        net->params[i]->dropback = 0;
        net->params[i]->selected = 0;
        net->params[i]->keep = 1;
    }
}

static int any_dropback(const cdb_network *net)
{
    for (int i = 0; i < net->nparams; i++)
        if (net->params[i]->dropback) return 1;
    return 0;
}

static void zero_gradient(cdb_network *net, cdb_param *p)
{
#ifdef GPU
    if (net->gpu) {
        gpu_zero(net, p->grad, p->size * sizeof(float));
        return;
    }
#endif
    (void)net;
    memset(p->grad, 0, p->size * sizeof(float));
}

static void mask_gradient(cdb_network *net, int i)
{
#ifdef GPU
    if (net->gpu) {
        gpu_mask_gradient(net, i);
        return;
    }
#endif
    dropback_mask_gradient(net->params[i], net->dropback.axis);
}

static void fill_truth(cdb_network *net, const int *labels)
{
    int K = net->classes;
    float eps = net->label_smoothing;
    for (int b = 0; b < net->mini_batch; b++) {
        float *t = net->truth + (size_t)b * K;
        for (int k = 0; k < K; k++) t[k] = eps / K;
        t[labels[b]] += 1.f - eps;
    }
}

float network_train_step(cdb_network *net, const float *images, const int *labels)
{
    double t0 = net->profile ? now_seconds() : 0;
    int dropback = any_dropback(net);
    if (dropback)
        dropback_draw(&net->dropback, net->params, net->nparams, net->seed, net->step, net->train.max_batches,
                      &net->dropback_stats);
    if (net->profile) net->dropback_seconds += now_seconds() - t0;
    for (int i = 0; i < net->nparams; i++) zero_gradient(net, net->params[i]);
    double loss = 0;
    for (int s = 0; s < net->subdivisions; s++) {
        net->subdivision = s;
        size_t first = (size_t)s * net->mini_batch;
        memcpy(net->input, images + first * net->inputs, (size_t)net->mini_batch * net->inputs * sizeof(float));
        fill_truth(net, labels + first);
#ifdef GPU
        if (net->gpu) gpu_push(net, net->truth, (size_t)net->mini_batch * net->classes * sizeof(float));
#endif
        net->loss = 0;
        network_forward(net, 1);
        network_backward(net);
        loss += net->loss;
    }
    float mean_loss = (float)(loss / net->batch);
    if (!isfinite(mean_loss)) return NAN; /* weights untouched */
    t0 = net->profile ? now_seconds() : 0;
    if (dropback)
        for (int i = 0; i < net->nparams; i++) mask_gradient(net, i);
    double t1 = net->profile ? now_seconds() : 0;
    if (net->profile) net->dropback_seconds += t1 - t0;
    float lr = network_learning_rate(net);
    net->step++;
#ifdef GPU
    if (net->gpu)
        gpu_optimizer_update(net, lr, net->step);
    else
#endif
        optimizer_update(net, lr, net->step);
    if (net->profile) net->update_seconds += now_seconds() - t1;
    net->seen += (uint64_t)net->batch;
    return mean_loss;
}

void network_print_summary(const cdb_network *net, FILE *out)
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
            if (l->params[k].eligible) db = l->params[k].dropback ? "yes" : "no";
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
            if (l->params[k].dropback) snprintf(rate, sizeof(rate), " (p=%.2f)", l->params[k].channel_rate);
        fprintf(out, "%5d %-14s %-34s %16s %16s %10zu %s%s\n", i, l->ops->name, l->description, in, outs, count, db,
                rate);
    }
    fprintf(out, "total parameters: %zu\n", total);
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
