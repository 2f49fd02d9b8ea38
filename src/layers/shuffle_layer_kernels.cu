/* [shuffle] on the GPU: a gather per output element, and its inverse (each
 * input element has exactly one output: no atomics). */
#include "layer_kernels.cuh"
extern "C" {
#include "shuffle_layer.h"
}

extern "C" {
LAYER_GPU_TWINS(shuffle);
}

__device__ static int source_channel(int k, int channels, int groups)
{
    return k % groups * (channels / groups) + k / groups;
}

/* backward = 0: y[out] = x[in]; 1: dx[in] += dy[out] */
static __global__ void shuffle_kernel(const float *src, float *dst, int channels, int groups, size_t spatial, size_t n,
                               int backward)
{
    FOR_EACH(i, n)
    {
        size_t s = i % spatial, k = i / spatial % channels, b = i / (spatial * channels);
        size_t from = (b * channels + source_channel((int)k, channels, groups)) * spatial + s;
        if (backward)
            dst[from] += src[i];
        else
            dst[i] = src[from];
    }
}

void cdb_shuffle_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    (void)train;
    const shuffle_priv *p = (const shuffle_priv *)l->priv;
    size_t n = (size_t)l->batch * l->outputs;
    shuffle_kernel<<<grid_for(n), THREADS>>>(GPU_F(net, l->input, n), GPU_F(net, l->output, n), l->c, p->groups,
                                             (size_t)l->h * l->w, n, 0);
    LAUNCH_CHECK(shuffle_kernel);
}

void cdb_shuffle_backward_gpu(cdb_layer *l, cdb_network *net)
{
    if (!l->input_delta) return;
    const shuffle_priv *p = (const shuffle_priv *)l->priv;
    size_t n = (size_t)l->batch * l->outputs;
    shuffle_kernel<<<grid_for(n), THREADS>>>(GPU_F(net, l->delta, n), GPU_F(net, l->input_delta, n), l->c, p->groups,
                                             (size_t)l->h * l->w, n, 1);
    LAUNCH_CHECK(shuffle_kernel);
}
