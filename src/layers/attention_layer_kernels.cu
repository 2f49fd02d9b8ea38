/* [attention] on the GPU: the projections as single cuBLAS GEMMs over
 * batch x tokens rows, and each head's score and value products as one
 * strided-batched GEMM over the images; the same algebra as
 * attention_layer.c. */
#include "layer_kernels.cuh"
extern "C" {
#include "attention_layer.h"
}

extern "C" {
LAYER_GPU_TWINS(attention);
}

static __global__ void attention_softmax_kernel(float *scores, int T, size_t rows)
{
    FOR_EACH(r, rows)
    {
        float *row = scores + r * T;
        float m = row[0];
        for (int j = 1; j < T; j++) m = fmaxf(m, row[j]);
        float sum = 0;
        for (int j = 0; j < T; j++) sum += row[j] = expf(row[j] - m);
        for (int j = 0; j < T; j++) row[j] /= sum;
    }
}

/* dS = scale * P o (dP - rowsum(dP o P)), in place over dP. */
static __global__ void attention_softmax_backward_kernel(const float *probs, float *d, int T, float scale, size_t rows)
{
    FOR_EACH(r, rows)
    {
        const float *p = probs + r * T;
        float *ds = d + r * T, dot = 0;
        for (int j = 0; j < T; j++) dot += p[j] * ds[j];
        for (int j = 0; j < T; j++) ds[j] = scale * p[j] * (ds[j] - dot);
    }
}

void cdb_attention_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    (void)train;
    attention_priv *p = (attention_priv *)l->priv;
    int T = p->T, D = p->D, dh = p->dh, H = p->heads, B = l->batch, rows = B * T;
    long tt = (long)T * T, t3d = (long)T * 3 * D;
    float *qkv = GPU_F(net, p->qkv, (size_t)rows * 3 * D), *probs = GPU_F(net, p->probs, (size_t)B * H * tt);
    float *att = GPU_F(net, p->attended, (size_t)rows * D);
    cdb_gpu_gemm(net, 0, 1, rows, 3 * D, D, 1, GPU_F(net, l->input, (size_t)rows * D), D,
             GPU_F(net, p->qkv_w->value, p->qkv_w->size), D, 0, qkv, 3 * D);
    cdb_add_bias_gpu(qkv, GPU_F(net, p->qkv_b->value, 3 * D), rows, 3 * D, 1);
    for (int h = 0; h < H; h++) {
        const float *q = qkv + (size_t)h * dh, *k = q + D;
        cdb_gpu_gemm_batched(net, 0, 1, T, T, dh, p->scale, q, 3 * D, t3d, k, 3 * D, t3d, 0, probs + (size_t)h * tt, T,
                         H * tt, B);
    }
    attention_softmax_kernel<<<grid_for((size_t)B * H * T), THREADS>>>(probs, T, (size_t)B * H * T);
    LAUNCH_CHECK(attention_softmax_kernel);
    for (int h = 0; h < H; h++) {
        const float *v = qkv + 2 * (size_t)D + (size_t)h * dh;
        cdb_gpu_gemm_batched(net, 0, 0, T, dh, T, 1, probs + (size_t)h * tt, T, H * tt, v, 3 * D, t3d, 0,
                         att + (size_t)h * dh, D, (long)T * D, B);
    }
    float *out = GPU_F(net, l->output, (size_t)rows * D);
    cdb_gpu_gemm(net, 0, 1, rows, D, D, 1, att, D, GPU_F(net, p->proj_w->value, p->proj_w->size), D, 0, out, D);
    cdb_add_bias_gpu(out, GPU_F(net, p->proj_b->value, D), rows, D, 1);
}

void cdb_attention_backward_gpu(cdb_layer *l, cdb_network *net)
{
    attention_priv *p = (attention_priv *)l->priv;
    int T = p->T, D = p->D, dh = p->dh, H = p->heads, B = l->batch, rows = B * T;
    long tt = (long)T * T, t3d = (long)T * 3 * D, td = (long)T * D;
    const float *dy = GPU_F(net, l->delta, (size_t)rows * D), *att = GPU_F(net, p->attended, (size_t)rows * D);
    const float *qkv = GPU_F(net, p->qkv, (size_t)rows * 3 * D), *probs = GPU_F(net, p->probs, (size_t)B * H * tt);
    float *d_att = GPU_F(net, p->d_attended, (size_t)rows * D), *d_qkv = GPU_F(net, p->d_qkv, (size_t)rows * 3 * D);
    float *d_scores = GPU_F(net, p->d_scores, (size_t)B * H * tt);
    cdb_gpu_gemm(net, 1, 0, D, D, rows, 1, dy, D, att, D, 1, GPU_F(net, p->proj_w->grad, p->proj_w->size), D);
    cdb_bias_grad_gpu(dy, GPU_F(net, p->proj_b->grad, D), rows, D, 1);
    cdb_gpu_gemm(net, 0, 0, rows, D, D, 1, dy, D, GPU_F(net, p->proj_w->value, p->proj_w->size), D, 0, d_att, D);
    for (int h = 0; h < H; h++) {
        const float *P = probs + (size_t)h * tt, *dO = d_att + (size_t)h * dh;
        const float *v = qkv + 2 * (size_t)D + (size_t)h * dh;
        float *dv = d_qkv + 2 * (size_t)D + (size_t)h * dh;
        cdb_gpu_gemm_batched(net, 1, 0, T, dh, T, 1, P, T, H * tt, dO, D, td, 0, dv, 3 * D, t3d, B);          /* dV = P^T dO */
        cdb_gpu_gemm_batched(net, 0, 1, T, T, dh, 1, dO, D, td, v, 3 * D, t3d, 0, d_scores + (size_t)h * tt, T, H * tt,
                         B);                                                                               /* dP = dO V^T */
    }
    attention_softmax_backward_kernel<<<grid_for((size_t)B * H * T), THREADS>>>(probs, d_scores, T, p->scale,
                                                                               (size_t)B * H * T);
    LAUNCH_CHECK(attention_softmax_backward_kernel);
    for (int h = 0; h < H; h++) {
        const float *dS = d_scores + (size_t)h * tt, *q = qkv + (size_t)h * dh, *k = q + D;
        float *dq = d_qkv + (size_t)h * dh, *dk = dq + D;
        cdb_gpu_gemm_batched(net, 0, 0, T, dh, T, 1, dS, T, H * tt, k, 3 * D, t3d, 0, dq, 3 * D, t3d, B); /* dQ = dS K */
        cdb_gpu_gemm_batched(net, 1, 0, T, dh, T, 1, dS, T, H * tt, q, 3 * D, t3d, 0, dk, 3 * D, t3d, B); /* dK = dS^T Q */
    }
    const float *x = GPU_F(net, l->input, (size_t)rows * D);
    cdb_gpu_gemm(net, 1, 0, 3 * D, D, rows, 1, d_qkv, 3 * D, x, D, 1, GPU_F(net, p->qkv_w->grad, p->qkv_w->size), D);
    cdb_bias_grad_gpu(d_qkv, GPU_F(net, p->qkv_b->grad, 3 * D), rows, 3 * D, 1);
    if (l->input_delta)
        cdb_gpu_gemm(net, 0, 0, rows, D, 3 * D, 1, d_qkv, 3 * D, GPU_F(net, p->qkv_w->value, p->qkv_w->size), D, 1,
                 GPU_F(net, l->input_delta, (size_t)rows * D), D);
}
