/* [attention]: multi-head self-attention over a token sequence, as in ViT:
 *   qkv = x Wqkv^T + bqkv            x (batch*T, D), Wqkv (3D, D)
 *   per head h: O_h = softmax(Q_h K_h^T / sqrt(dh)) V_h, dh = D / heads
 *   y = O Wproj^T + bproj            Wproj (D, D)
 * Q, K, V of head h are columns [h*dh, (h+1)*dh) of the q, k and v thirds
 * of qkv (timm's layout). Wqkv and Wproj are eligible for ChannelDropBack
 * (channel axis: their D input features). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fastmath.h"
#include "gemm.h"
#include "layers.h"
#include "attention_layer.h"

static void sum_rows(const float *d, float *grad, int rows, int cols)
{
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) grad[c] += d[(size_t)r * cols + c];
}

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    (void)net;
    (void)train;
    attention_priv *p = l->priv;
    int T = p->T, D = p->D, dh = p->dh, H = p->heads, rows = l->batch * T;
    cdb_broadcast_rows(p->qkv, p->qkv_b->value, rows, 3 * D);
    cdb_gemm(0, 1, rows, 3 * D, D, 1, l->input, D, p->qkv_w->value, D, 1, p->qkv, 3 * D);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < l->batch * H; bh++) {
        int b = bh / H, h = bh % H;
        const float *q = p->qkv + (size_t)b * T * 3 * D + (size_t)h * dh;
        const float *k = q + D, *v = q + 2 * D;
        float *P = p->probs + (size_t)bh * T * T;
        cdb_gemm(0, 1, T, T, dh, p->scale, q, 3 * D, k, 3 * D, 0, P, T);
        for (int i = 0; i < T; i++) {
            float *row = P + (size_t)i * T, m = row[0];
            for (int j = 1; j < T; j++) m = row[j] > m ? row[j] : m;
            float sum = 0;
            for (int j = 0; j < T; j++) row[j] = fast_expf(row[j] - m);
            for (int j = 0; j < T; j++) sum += row[j];
            for (int j = 0; j < T; j++) row[j] /= sum;
        }
        cdb_gemm(0, 0, T, dh, T, 1, P, T, v, 3 * D, 0, p->attended + (size_t)b * T * D + (size_t)h * dh, D);
    }
    cdb_broadcast_rows(l->output, p->proj_b->value, rows, D);
    cdb_gemm(0, 1, rows, D, D, 1, p->attended, D, p->proj_w->value, D, 1, l->output, D);
}

static void backward(cdb_layer *l, cdb_network *net)
{
    attention_priv *p = l->priv;
    int T = p->T, D = p->D, dh = p->dh, H = p->heads, rows = l->batch * T;
    const float *dy = l->delta;
    cdb_dropback_weight_grad(net, p->proj_w, 0, 1, 0, D, D, rows, dy, D, p->attended, D, p->proj_w->grad, D);
    sum_rows(dy, p->proj_b->grad, rows, D);
    cdb_gemm(0, 0, rows, D, D, 1, dy, D, p->proj_w->value, D, 0, p->d_attended, D);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < l->batch * H; bh++) {
        int b = bh / H, h = bh % H;
        size_t base = (size_t)b * T * 3 * D + (size_t)h * dh;
        const float *q = p->qkv + base, *k = q + D, *v = q + 2 * D;
        float *dq = p->d_qkv + base, *dk = dq + D, *dv = dq + 2 * D;
        const float *P = p->probs + (size_t)bh * T * T;
        float *dS = p->d_scores + (size_t)bh * T * T;
        const float *dO = p->d_attended + (size_t)b * T * D + (size_t)h * dh;
        cdb_gemm(1, 0, T, dh, T, 1, P, T, dO, D, 0, dv, 3 * D);      /* dV = P^T dO */
        cdb_gemm(0, 1, T, T, dh, 1, dO, D, v, 3 * D, 0, dS, T);      /* dP = dO V^T */
        for (int i = 0; i < T; i++) {                             /* softmax backward */
            const float *pr = P + (size_t)i * T;
            float *ds = dS + (size_t)i * T, dot = 0;
            for (int j = 0; j < T; j++) dot += pr[j] * ds[j];
            for (int j = 0; j < T; j++) ds[j] = p->scale * pr[j] * (ds[j] - dot);
        }
        cdb_gemm(0, 0, T, dh, T, 1, dS, T, k, 3 * D, 0, dq, 3 * D);  /* dQ = dS K */
        cdb_gemm(1, 0, T, dh, T, 1, dS, T, q, 3 * D, 0, dk, 3 * D);  /* dK = dS^T Q */
    }
    cdb_dropback_weight_grad(net, p->qkv_w, 0, 1, 0, 3 * D, D, rows, p->d_qkv, 3 * D, l->input, D,
                         p->qkv_w->grad, D);
    sum_rows(p->d_qkv, p->qkv_b->grad, rows, 3 * D);
    if (l->input_delta) cdb_gemm(0, 0, rows, D, 3 * D, 1, p->d_qkv, 3 * D, p->qkv_w->value, D, 1, l->input_delta, D);
}

static void destroy(cdb_layer *l)
{
    attention_priv *p = l->priv;
    free(p->qkv);
    free(p->probs);
    free(p->attended);
    free(p->d_attended);
    free(p->d_qkv);
    free(p->d_scores);
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    attention_priv *p = cdb_layer_priv(l, sizeof(attention_priv), destroy);
    if (!p) return -1;
    p->heads = cdb_cfg_int(r, "heads", 1, 1, 4096);
    float init_std = cdb_cfg_float(r, "init_std", 0.02f, 0.f, 10.f);
    if (r->failed) return -1;
    p->T = l->tokens;
    p->D = l->c;
    if (p->D % p->heads) {
        cdb_cfg_fail(r, "heads", "%d features are not divisible by heads=%d", p->D, p->heads);
        return -1;
    }
    p->dh = p->D / p->heads;
    p->scale = 1.f / sqrtf((float)p->dh);
    int D = p->D;
    p->qkv_w = cdb_layer_add_param(l, "qkv_weights", (size_t)3 * D * D, 1, 3 * D, D, 1);
    p->qkv_b = cdb_layer_add_param(l, "qkv_biases", (size_t)3 * D, 0, 0, 0, 0);
    p->proj_w = cdb_layer_add_param(l, "proj_weights", (size_t)D * D, 1, D, D, 1);
    p->proj_b = cdb_layer_add_param(l, "proj_biases", (size_t)D, 0, 0, 0, 0);
    cdb_dropback_read_layer_keys(r, p->qkv_w);
    cdb_dropback_read_layer_keys(r, p->proj_w); /* the layer's keys apply to both weights */
    if (cdb_cfg_check_unused(r)) return -1;
    cdb_init_trunc_normal(p->qkv_w->value, p->qkv_w->size, init_std, net->seed, l->index, 3);
    cdb_init_trunc_normal(p->proj_w->value, p->proj_w->size, init_std, net->seed, l->index, 4);
    cdb_layer_add_io(l, p->qkv_b->value, p->qkv_b->size);
    cdb_layer_add_io(l, p->qkv_w->value, p->qkv_w->size);
    cdb_layer_add_io(l, p->proj_b->value, p->proj_b->size);
    cdb_layer_add_io(l, p->proj_w->value, p->proj_w->size);
    cdb_layer_set_sequence_output(l, l->tokens, D);
    if (cdb_layer_alloc_output(l, r)) return -1;
    size_t rows = (size_t)l->batch * p->T, scores = (size_t)l->batch * p->heads * p->T * p->T;
    p->qkv = cdb_xcalloc(rows * 3 * D, sizeof(float));
    p->d_qkv = cdb_xcalloc(rows * 3 * D, sizeof(float));
    p->attended = cdb_xcalloc(rows * D, sizeof(float));
    p->d_attended = cdb_xcalloc(rows * D, sizeof(float));
    p->probs = cdb_xcalloc(scores, sizeof(float));
    p->d_scores = cdb_xcalloc(scores, sizeof(float));
    l->flops = (size_t)p->T * (4 * (size_t)D * D + 2 * (size_t)p->T * D);
    snprintf(l->description, sizeof(l->description), "%d heads of %d, %d tokens", p->heads, p->dh, p->T);
    return 0;
}

LAYER_OPS(attention, NULL, LAYER_TAKES_SEQUENCE, 0);
