/* [layernorm]: normalises every token of a sequence over its d features,
 * y = gamma * (x - mean) / sqrt(var + eps) + beta, as PyTorch's LayerNorm.
 * input and output (batch, tokens, d); gamma and beta (d) are not eligible. */
#include <math.h>
#include <stdlib.h>

#include "layers.h"
#include "layernorm_layer.h"

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    (void)net;
    (void)train;
    layernorm_priv *p = l->priv;
    int rows = l->batch * l->tokens, D = l->c;
    const float *g = p->scales->value, *beta = p->biases->value;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *x = l->input + (size_t)r * D;
        float *xh = p->x_hat + (size_t)r * D, *y = l->output + (size_t)r * D;
        double sum = 0, sq = 0;
#pragma omp simd reduction(+ : sum)
        for (int d = 0; d < D; d++) sum += x[d];
        float mean = (float)(sum / D);
#pragma omp simd reduction(+ : sq)
        for (int d = 0; d < D; d++) sq += (double)(x[d] - mean) * (x[d] - mean);
        float inv = 1.f / sqrtf((float)(sq / D) + p->eps);
        p->inv_std[r] = inv;
        for (int d = 0; d < D; d++) {
            xh[d] = (x[d] - mean) * inv;
            y[d] = g[d] * xh[d] + beta[d];
        }
    }
}

static void backward(cdb_layer *l, cdb_network *net)
{
    (void)net;
    layernorm_priv *p = l->priv;
    int rows = l->batch * l->tokens, D = l->c;
    const float *g = p->scales->value;
    for (int r = 0; r < rows; r++) {
        const float *dy = l->delta + (size_t)r * D, *xh = p->x_hat + (size_t)r * D;
        for (int d = 0; d < D; d++) {
            p->scales->grad[d] += dy[d] * xh[d];
            p->biases->grad[d] += dy[d];
        }
    }
    if (!l->input_delta) return;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *dy = l->delta + (size_t)r * D, *xh = p->x_hat + (size_t)r * D;
        float *dx = l->input_delta + (size_t)r * D;
        double mean_dxh = 0, mean_dxh_xh = 0;
#pragma omp simd reduction(+ : mean_dxh, mean_dxh_xh)
        for (int d = 0; d < D; d++) {
            float dxh = dy[d] * g[d];
            mean_dxh += dxh;
            mean_dxh_xh += dxh * xh[d];
        }
        float m1 = (float)(mean_dxh / D), m2 = (float)(mean_dxh_xh / D);
        for (int d = 0; d < D; d++) dx[d] += p->inv_std[r] * (dy[d] * g[d] - m1 - xh[d] * m2);
    }
}

static void destroy(cdb_layer *l)
{
    layernorm_priv *p = l->priv;
    free(p->x_hat);
    free(p->inv_std);
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    (void)net;
    layernorm_priv *p = cdb_layer_priv(l, sizeof(layernorm_priv), destroy);
    if (!p) return -1;
    p->eps = cdb_cfg_float(r, "eps", 1e-5f, 1e-12f, 1.f);
    if (cdb_cfg_check_unused(r)) return -1;
    cdb_layer_set_sequence_output(l, l->tokens, l->c);
    if (cdb_layer_alloc_output(l, r)) return -1;
    p->biases = cdb_layer_add_param(l, "biases", (size_t)l->c, 0, 0, 0, 0);
    p->scales = cdb_layer_add_param(l, "scales", (size_t)l->c, 0, 0, 0, 0);
    if (!p->scales->value) return -1;
    for (int d = 0; d < l->c; d++) p->scales->value[d] = 1;
    cdb_layer_add_io(l, p->scales->value, (size_t)l->c);
    cdb_layer_add_io(l, p->biases->value, (size_t)l->c);
    p->x_hat = cdb_xcalloc((size_t)l->batch * l->inputs, sizeof(float));
    p->inv_std = cdb_xcalloc((size_t)l->batch * l->tokens, sizeof(float));
    snprintf(l->description, sizeof(l->description), "%d features, eps %g", l->c, p->eps);
    return 0;
}

LAYER_OPS(layernorm, NULL, LAYER_TAKES_SEQUENCE, 0);
