/* Activations, biases and small BLAS-1 helpers on the GPU. */
#include "cuda_common.cuh"
#include "shared_math.h"

static __global__ void activate_kernel(int a, const float *x, float *y, size_t n)
{
    FOR_EACH(i, n) y[i] = activation_value(a, x[i]);
}

static __global__ void gradient_kernel(int a, const float *x, const float *dy, float *dx, size_t n)
{
    FOR_EACH(i, n) dx[i] = dy[i] * activation_derivative(a, x[i]);
}

void cdb_activate_gpu(activation a, const float *x, float *y, size_t n)
{
    if (a == ACT_LINEAR && x == y) return;
    activate_kernel<<<grid_for(n), THREADS>>>((int)a, x, y, n);
    LAUNCH_CHECK(activate_kernel);
}

void cdb_gradient_gpu(activation a, const float *x, const float *dy, float *dx, size_t n)
{
    if (a == ACT_LINEAR && dy == dx) return;
    gradient_kernel<<<grid_for(n), THREADS>>>((int)a, x, dy, dx, n);
    LAUNCH_CHECK(gradient_kernel);
}

static __global__ void gelu_forward_grad_kernel(const float *x, float *y, float *g, size_t n)
{
    FOR_EACH(i, n)
    {
        float v = x[i];
        g[i] = activation_derivative(ACT_GELU, v);
        y[i] = activation_value(ACT_GELU, v);
    }
}

void cdb_gelu_forward_grad_gpu(const float *x, float *y, float *g, size_t n)
{
    gelu_forward_grad_kernel<<<grid_for(n), THREADS>>>(x, y, g, n);
    LAUNCH_CHECK(gelu_forward_grad_kernel);
}

static __global__ void multiply_kernel(float *x, const float *g, size_t n)
{
    FOR_EACH(i, n) x[i] *= g[i];
}

void cdb_multiply_gpu(float *x, const float *g, size_t n)
{
    multiply_kernel<<<grid_for(n), THREADS>>>(x, g, n);
    LAUNCH_CHECK(multiply_kernel);
}

static __global__ void add_bias_kernel(float *y, const float *bias, int channels, int spatial, size_t n)
{
    FOR_EACH(i, n) y[i] += bias[(i / spatial) % channels];
}

void cdb_add_bias_gpu(float *y, const float *bias, int batch, int channels, int spatial)
{
    size_t n = (size_t)batch * channels * spatial;
    add_bias_kernel<<<grid_for(n), THREADS>>>(y, bias, channels, spatial, n);
    LAUNCH_CHECK(add_bias_kernel);
}

/* One block per channel sums dy over (batch, spatial). */
static __global__ void bias_grad_kernel(const float *dy, float *grad, int batch, int channels, int spatial)
{
    __shared__ float partial[THREADS];
    int c = blockIdx.x;
    float s = 0;
    for (int i = threadIdx.x; i < batch * spatial; i += blockDim.x) {
        int b = i / spatial, k = i % spatial;
        s += dy[((size_t)b * channels + c) * spatial + k];
    }
    float total = block_sum(s, partial);
    if (threadIdx.x == 0) grad[c] += total;
}

void cdb_bias_grad_gpu(const float *dy, float *grad, int batch, int channels, int spatial)
{
    bias_grad_kernel<<<channels, THREADS>>>(dy, grad, batch, channels, spatial);
    LAUNCH_CHECK(bias_grad_kernel);
}

static __global__ void axpy_kernel(size_t n, float alpha, const float *x, float *y)
{
    FOR_EACH(i, n) y[i] += alpha * x[i];
}

void cdb_axpy_gpu(size_t n, float alpha, const float *x, float *y)
{
    axpy_kernel<<<grid_for(n), THREADS>>>(n, alpha, x, y);
    LAUNCH_CHECK(axpy_kernel);
}
