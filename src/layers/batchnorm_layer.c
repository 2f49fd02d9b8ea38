#include "batchnorm_layer.h"
#include "dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"

int cdb_bn_init(batchnorm *bn, cdb_layer *l, const cdb_network *net, int channels, int spatial, int batch)
{
    bn->momentum = net->darknet ? BN_MOMENTUM_DARKNET : BN_MOMENTUM;
    bn->channels = channels;
    bn->spatial = spatial;
    bn->batch = batch;
    bn->biases = cdb_layer_add_param(l, "biases", (size_t)channels, 0, 0, 0, 0);
    bn->scales = cdb_layer_add_param(l, "scales", (size_t)channels, 0, 0, 0, 0);
    bn->rolling_mean = cdb_xcalloc((size_t)channels, sizeof(float));
    bn->rolling_variance = cdb_xcalloc((size_t)channels, sizeof(float));
    bn->mean = cdb_xcalloc((size_t)channels, sizeof(float));
    bn->variance = cdb_xcalloc((size_t)channels, sizeof(float));
    bn->x_hat = cdb_xcalloc((size_t)batch * channels * spatial, sizeof(float));
    if (!bn->scales->value || !bn->rolling_variance || !bn->rolling_mean || !bn->mean || !bn->variance || !bn->x_hat)
        return -1;
    bn->ranks = net->sync_bn && net->ranks > 1 ? net->ranks : 1;
    if (bn->ranks > 1 && !(bn->sync_sums = cdb_xcalloc((size_t)2 * channels, sizeof(double)))) return -1;
    for (int i = 0; i < channels; i++) bn->scales->value[i] = 1;
    for (int i = 0; i < channels; i++) bn->rolling_variance[i] = 1;
    return 0;
}

void cdb_bn_free(batchnorm *bn)
{
    free(bn->sync_sums);
    free(bn->rolling_mean);
    free(bn->rolling_variance);
    free(bn->mean);
    free(bn->variance);
    free(bn->x_hat);
}

/* Reductions: float vector sums over runs of at most 1024 values, then
 * double (as fast as float sums, about as exact as double ones). */
#define RUN 1024

static double sum_run(const float *p, size_t n)
{
    double total = 0;
    for (size_t i0 = 0; i0 < n; i0 += RUN) {
        size_t end = n - i0 < RUN ? n : i0 + RUN;
        float part = 0;
#pragma omp simd reduction(+ : part)
        for (size_t i = i0; i < end; i++) part += p[i];
        total += part;
    }
    return total;
}

static double centered_squares(const float *p, size_t n, float m)
{
    double total = 0;
    for (size_t i0 = 0; i0 < n; i0 += RUN) {
        size_t end = n - i0 < RUN ? n : i0 + RUN;
        float part = 0;
#pragma omp simd reduction(+ : part)
        for (size_t i = i0; i < end; i++) part += (p[i] - m) * (p[i] - m);
        total += part;
    }
    return total;
}

static double dot_run(const float *a, const float *b, size_t n)
{
    double total = 0;
    for (size_t i0 = 0; i0 < n; i0 += RUN) {
        size_t end = n - i0 < RUN ? n : i0 + RUN;
        float part = 0;
#pragma omp simd reduction(+ : part)
        for (size_t i = i0; i < end; i++) part += a[i] * b[i];
        total += part;
    }
    return total;
}

/* sync_bn: the mean and variance of every rank's images, from sums
 * exchanged over the ranks (the sum, then the centred squares about the
 * mean of all: the same two passes as one process). */
static void sync_statistics(batchnorm *bn, const float *x)
{
    int C = bn->channels, S = bn->spatial, B = bn->batch;
    double *sums = bn->sync_sums, count = (double)B * S * bn->ranks;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double sum = 0;
        for (int b = 0; b < B; b++) sum += sum_run(x + ((size_t)b * C + c) * S, S);
        sums[c] = sum;
    }
    if (cdb_dist_sum_doubles(sums, C)) cdb_set_error("sync_bn: %s", cdb_last_error());
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        bn->mean[c] = (float)(sums[c] / count);
        double sq = 0;
        for (int b = 0; b < B; b++) sq += centered_squares(x + ((size_t)b * C + c) * S, S, bn->mean[c]);
        sums[C + c] = sq;
    }
    cdb_dist_sum_doubles(sums + C, C);
    for (int c = 0; c < C; c++) {
        bn->variance[c] = (float)(sums[C + c] / count);
        float unbiased = count > 1 ? (float)(sums[C + c] / (count - 1)) : bn->variance[c];
        bn->rolling_mean[c] = (1 - bn->momentum) * bn->rolling_mean[c] + bn->momentum * bn->mean[c];
        bn->rolling_variance[c] = (1 - bn->momentum) * bn->rolling_variance[c] + bn->momentum * unbiased;
    }
}

void cdb_bn_forward(batchnorm *bn, const float *x, float *y, int train)
{
    int C = bn->channels, S = bn->spatial, B = bn->batch;
    int synced = train && bn->ranks > 1;
    if (synced) sync_statistics(bn, x);
    const float *gamma = bn->scales->value, *beta = bn->biases->value;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float mean, var;
        if (synced) {
            mean = bn->mean[c];
            var = bn->variance[c];
        } else if (train) {
            double sum = 0, sq = 0;
            for (int b = 0; b < B; b++) sum += sum_run(x + ((size_t)b * C + c) * S, S);
            double m = sum / ((double)B * S);
            for (int b = 0; b < B; b++) sq += centered_squares(x + ((size_t)b * C + c) * S, S, (float)m);
            long count = (long)B * S;
            mean = (float)m;
            var = (float)(sq / count);
            bn->mean[c] = mean;
            bn->variance[c] = var;
            float unbiased = count > 1 ? (float)(sq / (count - 1)) : var;
            bn->rolling_mean[c] = (1 - bn->momentum) * bn->rolling_mean[c] + bn->momentum * mean;
            bn->rolling_variance[c] = (1 - bn->momentum) * bn->rolling_variance[c] + bn->momentum * unbiased;
        } else {
            mean = bn->rolling_mean[c];
            var = bn->rolling_variance[c];
        }
        float inv_std = 1.f / sqrtf(var + BN_EPS);
        for (int b = 0; b < B; b++) {
            size_t off = ((size_t)b * C + c) * S;
            for (int s = 0; s < S; s++) {
                float xh = (x[off + s] - mean) * inv_std;
                if (train) bn->x_hat[off + s] = xh;
                y[off + s] = gamma[c] * xh + beta[c];
            }
        }
    }
}

/* Channel c's sums of dy and of dy * x_hat over this rank's images. */
static void channel_sums(const batchnorm *bn, const float *dy, int c, double *sum_dy, double *sum_dy_xh)
{
    int C = bn->channels, S = bn->spatial;
    *sum_dy = *sum_dy_xh = 0;
    for (int b = 0; b < bn->batch; b++) {
        size_t off = ((size_t)b * C + c) * S;
        *sum_dy += sum_run(dy + off, S);
        *sum_dy_xh += dot_run(dy + off, bn->x_hat + off, S);
    }
}

void cdb_bn_backward(batchnorm *bn, const float *dy, float *dx)
{
    int C = bn->channels, S = bn->spatial, B = bn->batch;
    const float *gamma = bn->scales->value;
    float *dgamma = bn->scales->grad, *dbeta = bn->biases->grad;
    double n = (double)B * S * bn->ranks;
    double *sums = bn->ranks > 1 ? bn->sync_sums : NULL; /* sync_bn: the sums over every rank's images */
    if (sums) {
#pragma omp parallel for schedule(static)
        for (int c = 0; c < C; c++) {
            channel_sums(bn, dy, c, &sums[c], &sums[C + c]);
            /* the parameters' gradients stay this rank's: the step sums them */
            dgamma[c] += (float)sums[C + c];
            dbeta[c] += (float)sums[c];
        }
        if (cdb_dist_sum_doubles(sums, 2 * C)) cdb_set_error("sync_bn: %s", cdb_last_error());
    }
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double sum_dy, sum_dy_xh;
        if (sums) {
            sum_dy = sums[c];
            sum_dy_xh = sums[C + c];
        } else {
            channel_sums(bn, dy, c, &sum_dy, &sum_dy_xh);
            dgamma[c] += (float)sum_dy_xh;
            dbeta[c] += (float)sum_dy;
        }
        float inv_std = 1.f / sqrtf(bn->variance[c] + BN_EPS);
        float k = gamma[c] * inv_std;
        float mean_dy = (float)(sum_dy / n), mean_dy_xh = (float)(sum_dy_xh / n);
        for (int b = 0; b < B; b++) {
            size_t off = ((size_t)b * C + c) * S;
            for (int s = 0; s < S; s++) dx[off + s] = k * (dy[off + s] - mean_dy - bn->x_hat[off + s] * mean_dy_xh);
        }
    }
}

/* The standalone [batchnorm] layer: normalises its input per channel, then
 * the optional activation (pre-activation blocks: batch norm and ReLU
 * before a convolution). */
static void forward(cdb_layer *l, cdb_network *net, int train)
{
    (void)net;
    bn_layer_priv *p = l->priv;
    float *z = p->act == ACT_LINEAR ? l->output : p->preact;
    cdb_bn_forward(&p->bn, l->input, z, train);
    if (p->act != ACT_LINEAR) cdb_activate_array(p->act, z, l->output, (size_t)l->batch * l->outputs);
}

static void backward(cdb_layer *l, cdb_network *net)
{
    (void)net;
    bn_layer_priv *p = l->priv;
    size_t n = (size_t)l->batch * l->outputs;
    if (p->act != ACT_LINEAR) cdb_gradient_array(p->act, p->preact, l->delta, l->delta, n);
    /* dx goes to a scratch copy of delta, then is added to the input delta. */
    cdb_bn_backward(&p->bn, l->delta, l->delta);
    if (l->input_delta)
        for (size_t i = 0; i < n; i++) l->input_delta[i] += l->delta[i];
}

static void destroy(cdb_layer *l)
{
    bn_layer_priv *p = l->priv;
    cdb_bn_free(&p->bn);
    free(p->preact);
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    (void)net;
    bn_layer_priv *p = cdb_layer_priv(l, sizeof(bn_layer_priv), destroy);
    if (!p) return -1;
    p->act = cdb_layer_read_activation(r, ACT_LINEAR);
    if (cdb_cfg_check_unused(r)) return -1;
    if (cdb_layer_alloc_same_shape(l, r)) return -1;
    batchnorm *bn = &p->bn;
    if (cdb_bn_init(bn, l, net, l->c, l->h * l->w, l->batch)) return -1;
    if (p->act != ACT_LINEAR) p->preact = cdb_xcalloc((size_t)l->batch * l->outputs, sizeof(float));
    /* AlexeyAB's order; pjreddie's files lack the biases (docs/weights.md). */
    cdb_layer_add_io(l, bn->biases->value, (size_t)l->c);
    cdb_layer_add_io(l, bn->scales->value, (size_t)l->c);
    cdb_layer_add_io(l, bn->rolling_mean, (size_t)l->c);
    cdb_layer_add_io_variance(l, bn->rolling_variance, (size_t)l->c);
    l->io_pjreddie_absent = 1;
    snprintf(l->description, sizeof(l->description), "%d channels%s%s", l->c, p->act == ACT_LINEAR ? "" : ", then ",
             p->act == ACT_LINEAR ? "" : cdb_activation_name(p->act));
    return 0;
}

LAYER_OPS(batchnorm, NULL, LAYER_TAKES_IMAGE, 0);
