/* Batch normalisation on the GPU: one block per channel for the statistics,
 * element-wise kernels for the rest; the same formulas as batchnorm_layer.c. */
#include "layer_kernels.cuh"
extern "C" {
#include "batchnorm_layer.h"
}

extern "C" {
LAYER_GPU_TWINS(batchnorm);
}

static __global__ void bn_statistics_kernel(const float *x, float *mean, float *variance, float *rolling_mean,
                                     float *rolling_variance, int batch, int channels, int spatial, float momentum)
{
    __shared__ float shared[THREADS];
    int c = blockIdx.x, count = batch * spatial;
    float s = 0;
    for (int i = threadIdx.x; i < count; i += blockDim.x)
        s += x[((size_t)(i / spatial) * channels + c) * spatial + i % spatial];
    float m = block_sum(s, shared) / count;
    float q = 0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) {
        float d = x[((size_t)(i / spatial) * channels + c) * spatial + i % spatial] - m;
        q += d * d;
    }
    float sq = block_sum(q, shared);
    if (threadIdx.x == 0) {
        mean[c] = m;
        variance[c] = sq / count;
        float unbiased = count > 1 ? sq / (count - 1) : sq / count;
        rolling_mean[c] = (1 - momentum) * rolling_mean[c] + momentum * m;
        rolling_variance[c] = (1 - momentum) * rolling_variance[c] + momentum * unbiased;
    }
}

static __global__ void bn_normalize_kernel(const float *x, float *y, float *x_hat, const float *mean, const float *variance,
                                    const float *gamma, const float *beta, int channels, int spatial, size_t n, float eps)
{
    FOR_EACH(i, n)
    {
        int c = (int)((i / spatial) % channels);
        float xh = (x[i] - mean[c]) * rsqrtf(variance[c] + eps);
        if (x_hat) x_hat[i] = xh;
        y[i] = gamma[c] * xh + beta[c];
    }
}

void cdb_bn_forward_gpu(batchnorm *bn, cdb_network *net, const float *x, float *y, int train)
{
    int C = bn->channels, S = bn->spatial, B = bn->batch;
    size_t n = (size_t)B * C * S;
    float *mean = GPU_F(net, bn->mean, C), *variance = GPU_F(net, bn->variance, C);
    float *rolling_mean = GPU_F(net, bn->rolling_mean, C), *rolling_variance = GPU_F(net, bn->rolling_variance, C);
    const float *use_mean = rolling_mean, *use_variance = rolling_variance;
    if (train) {
        bn_statistics_kernel<<<C, THREADS>>>(x, mean, variance, rolling_mean, rolling_variance, B, C, S, bn->momentum);
        LAUNCH_CHECK(bn_statistics_kernel);
        use_mean = mean;
        use_variance = variance;
    }
    bn_normalize_kernel<<<grid_for(n), THREADS>>>(x, y, train ? GPU_F(net, bn->x_hat, n) : NULL, use_mean, use_variance,
                                                  GPU_F(net, bn->scales->value, C), GPU_F(net, bn->biases->value, C), C,
                                                  S, n, BN_EPS);
    LAUNCH_CHECK(bn_normalize_kernel);
}

static __global__ void bn_grad_sums_kernel(const float *dy, const float *x_hat, float *sum_dy, float *sum_dy_xh, float *dgamma,
                                    float *dbeta, int batch, int channels, int spatial)
{
    __shared__ float shared[THREADS];
    int c = blockIdx.x, count = batch * spatial;
    float a = 0, b = 0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) {
        size_t k = ((size_t)(i / spatial) * channels + c) * spatial + i % spatial;
        a += dy[k];
        b += dy[k] * x_hat[k];
    }
    float total_dy = block_sum(a, shared), total_dy_xh = block_sum(b, shared);
    if (threadIdx.x == 0) {
        sum_dy[c] = total_dy;
        sum_dy_xh[c] = total_dy_xh;
        dgamma[c] += total_dy_xh;
        dbeta[c] += total_dy;
    }
}

static __global__ void bn_input_grad_kernel(const float *dy, const float *x_hat, float *dx, const float *sum_dy,
                                     const float *sum_dy_xh, const float *variance, const float *gamma, int channels,
                                     int spatial, float count, size_t n, float eps)
{
    FOR_EACH(i, n)
    {
        int c = (int)((i / spatial) % channels);
        float k = gamma[c] * rsqrtf(variance[c] + eps);
        dx[i] = k * (dy[i] - sum_dy[c] / count - x_hat[i] * sum_dy_xh[c] / count);
    }
}

void cdb_bn_backward_gpu(batchnorm *bn, cdb_network *net, const float *dy, float *dx)
{
    int C = bn->channels, S = bn->spatial, B = bn->batch;
    size_t n = (size_t)B * C * S;
    float *sums = cdb_gpu_workspace(net, 2 * (size_t)C);
    const float *x_hat = GPU_F(net, bn->x_hat, n);
    bn_grad_sums_kernel<<<C, THREADS>>>(dy, x_hat, sums, sums + C, GPU_F(net, bn->scales->grad, C),
                                        GPU_F(net, bn->biases->grad, C), B, C, S);
    LAUNCH_CHECK(bn_grad_sums_kernel);
    bn_input_grad_kernel<<<grid_for(n), THREADS>>>(dy, x_hat, dx, sums, sums + C, GPU_F(net, bn->variance, C),
                                                   GPU_F(net, bn->scales->value, C), C, S, (float)((size_t)B * S), n,
                                                   BN_EPS);
    LAUNCH_CHECK(bn_input_grad_kernel);
}

/* The standalone [batchnorm] layer. */
void cdb_batchnorm_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    bn_layer_priv *p = (bn_layer_priv *)l->priv;
    size_t n = (size_t)l->batch * l->outputs;
    float *out = GPU_F(net, l->output, n), *z = p->act == ACT_LINEAR ? out : GPU_F(net, p->preact, n);
    cdb_bn_forward_gpu(&p->bn, net, GPU_F(net, l->input, n), z, train);
    if (p->act != ACT_LINEAR) cdb_activate_gpu(p->act, z, out, n);
}

void cdb_batchnorm_backward_gpu(cdb_layer *l, cdb_network *net)
{
    bn_layer_priv *p = (bn_layer_priv *)l->priv;
    size_t n = (size_t)l->batch * l->outputs;
    float *delta = GPU_F(net, l->delta, n);
    if (p->act != ACT_LINEAR) cdb_gradient_gpu(p->act, GPU_F(net, p->preact, n), delta, delta, n);
    cdb_bn_backward_gpu(&p->bn, net, delta, delta);
    if (l->input_delta) cdb_axpy_gpu(n, 1.f, delta, GPU_F(net, l->input_delta, n));
}
