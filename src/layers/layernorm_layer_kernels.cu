/* [layernorm] on the GPU: one block per token for the statistics and the
 * input gradient, one thread per feature for gamma and beta. */
#include "layer_kernels.cuh"
extern "C" {
#include "layernorm_layer.h"
}

extern "C" {
LAYER_GPU_TWINS(layernorm);
}

static __global__ void layernorm_forward_kernel(const float *x, float *y, float *x_hat, float *inv_std, const float *gamma,
                                         const float *beta, int D, float eps)
{
    __shared__ float shared[THREADS];
    size_t r = blockIdx.x;
    const float *in = x + r * D;
    float s = 0;
    for (int d = threadIdx.x; d < D; d += blockDim.x) s += in[d];
    float mean = block_sum(s, shared) / D;
    float q = 0;
    for (int d = threadIdx.x; d < D; d += blockDim.x) q += (in[d] - mean) * (in[d] - mean);
    float inv = rsqrtf(block_sum(q, shared) / D + eps);
    if (threadIdx.x == 0) inv_std[r] = inv;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float xh = (in[d] - mean) * inv;
        x_hat[r * D + d] = xh;
        y[r * D + d] = gamma[d] * xh + beta[d];
    }
}

static __global__ void layernorm_param_grad_kernel(const float *dy, const float *x_hat, float *dgamma, float *dbeta, int rows,
                                            int D)
{
    FOR_EACH(d, (size_t)D)
    {
        float a = 0, b = 0;
        for (int r = 0; r < rows; r++) {
            float g = dy[(size_t)r * D + d];
            a += g * x_hat[(size_t)r * D + d];
            b += g;
        }
        dgamma[d] += a;
        dbeta[d] += b;
    }
}

static __global__ void layernorm_input_grad_kernel(const float *dy, const float *x_hat, const float *inv_std,
                                            const float *gamma, float *dx, int D)
{
    __shared__ float shared[THREADS];
    size_t r = blockIdx.x;
    const float *g = dy + r * D, *xh = x_hat + r * D;
    float a = 0, b = 0;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float dxh = g[d] * gamma[d];
        a += dxh;
        b += dxh * xh[d];
    }
    float m1 = block_sum(a, shared) / D, m2 = block_sum(b, shared) / D;
    for (int d = threadIdx.x; d < D; d += blockDim.x) dx[r * D + d] += inv_std[r] * (g[d] * gamma[d] - m1 - xh[d] * m2);
}

void cdb_layernorm_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    (void)train;
    layernorm_priv *p = (layernorm_priv *)l->priv;
    int rows = l->batch * l->tokens, D = l->c;
    size_t n = (size_t)rows * D;
    layernorm_forward_kernel<<<rows, THREADS>>>(GPU_F(net, l->input, n), GPU_F(net, l->output, n),
                                                GPU_F(net, p->x_hat, n), GPU_F(net, p->inv_std, rows),
                                                GPU_F(net, p->scales->value, D), GPU_F(net, p->biases->value, D), D,
                                                p->eps);
    LAUNCH_CHECK(layernorm_forward_kernel);
}

void cdb_layernorm_backward_gpu(cdb_layer *l, cdb_network *net)
{
    layernorm_priv *p = (layernorm_priv *)l->priv;
    int rows = l->batch * l->tokens, D = l->c;
    size_t n = (size_t)rows * D;
    const float *dy = GPU_F(net, l->delta, n), *x_hat = GPU_F(net, p->x_hat, n);
    layernorm_param_grad_kernel<<<grid_for(D), THREADS>>>(dy, x_hat, GPU_F(net, p->scales->grad, D),
                                                          GPU_F(net, p->biases->grad, D), rows, D);
    LAUNCH_CHECK(layernorm_param_grad_kernel);
    if (!l->input_delta) return;
    layernorm_input_grad_kernel<<<rows, THREADS>>>(dy, x_hat, GPU_F(net, p->inv_std, rows),
                                                   GPU_F(net, p->scales->value, D), GPU_F(net, l->input_delta, n), D);
    LAUNCH_CHECK(layernorm_input_grad_kernel);
}
