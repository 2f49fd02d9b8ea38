/* [token_pool] on the GPU. */
#include "layer_kernels.cuh"
extern "C" {
#include "token_pool_layer.h"
}

extern "C" {
LAYER_GPU_TWINS(token_pool);
}

static __global__ void token_pool_kernel(const float *in, float *out, int T, int D, int mean, size_t n)
{
    FOR_EACH(i, n)
    {
        size_t b = i / D, d = i % D;
        const float *seq = in + b * (size_t)T * D;
        if (!mean) {
            out[i] = seq[d];
            continue;
        }
        float s = 0;
        for (int t = 0; t < T; t++) s += seq[(size_t)t * D + d];
        out[i] = s / T;
    }
}

static __global__ void token_pool_backward_kernel(const float *delta, float *in_delta, int T, int D, int mean, size_t n)
{
    FOR_EACH(i, n)
    {
        size_t b = i / ((size_t)T * D), t = (i / D) % T, d = i % D;
        if (mean)
            in_delta[i] += delta[b * D + d] / T;
        else if (t == 0)
            in_delta[i] += delta[b * D + d];
    }
}

void cdb_token_pool_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    (void)train;
    pool_priv *p = (pool_priv *)l->priv;
    size_t n = (size_t)l->batch * l->c;
    token_pool_kernel<<<grid_for(n), THREADS>>>(GPU_F(net, l->input, (size_t)l->batch * l->inputs),
                                                GPU_F(net, l->output, n), l->tokens, l->c, p->mean, n);
    LAUNCH_CHECK(token_pool_kernel);
}

void cdb_token_pool_backward_gpu(cdb_layer *l, cdb_network *net)
{
    pool_priv *p = (pool_priv *)l->priv;
    if (!l->input_delta) return;
    size_t n_in = (size_t)l->batch * l->inputs;
    token_pool_backward_kernel<<<grid_for(n_in), THREADS>>>(GPU_F(net, l->delta, (size_t)l->batch * l->c),
                                                            GPU_F(net, l->input_delta, n_in), l->tokens, l->c, p->mean,
                                                            n_in);
    LAUNCH_CHECK(token_pool_backward_kernel);
}
