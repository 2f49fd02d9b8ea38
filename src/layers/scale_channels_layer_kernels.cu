/* [scale_channels] on the GPU: one thread per output element; the scale's
 * gradient by one block per (image, channel). */
#include "layer_kernels.cuh"
extern "C" {
#include "scale_channels_layer.h"
}

extern "C" {
LAYER_GPU_TWINS(scale_channels);
}

static __global__ void scale_channels_forward_kernel(const float *x, const float *scale, float *y, int spatial, size_t n)
{
    FOR_EACH(i, n) y[i] = x[i] * scale[i / spatial];
}

/* block (b, c): dx += d * scale; dscale += sum d * x */
static __global__ void scale_channels_backward_kernel(const float *d, const float *x, const float *scale, float *dx,
                                               float *dscale, int spatial)
{
    __shared__ float partial[THREADS];
    size_t bc = blockIdx.x, at = bc * spatial;
    float s = 0, k = scale[bc];
    for (int i = threadIdx.x; i < spatial; i += blockDim.x) {
        dx[at + i] += d[at + i] * k;
        s += d[at + i] * x[at + i];
    }
    float total = block_sum(s, partial);
    if (dscale && threadIdx.x == 0) dscale[bc] += total;
}

void cdb_scale_channels_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    (void)train;
    const scale_channels_priv *p = (const scale_channels_priv *)l->priv;
    const cdb_layer *src = &net->layers[p->from];
    size_t n = (size_t)l->batch * l->outputs;
    scale_channels_forward_kernel<<<grid_for(n), THREADS>>>(GPU_F(net, src->output, n),
                                                            GPU_F(net, l->input, (size_t)l->batch * l->inputs),
                                                            GPU_F(net, l->output, n), l->out_h * l->out_w, n);
    LAUNCH_CHECK(scale_channels_forward_kernel);
}

void cdb_scale_channels_backward_gpu(cdb_layer *l, cdb_network *net)
{
    const scale_channels_priv *p = (const scale_channels_priv *)l->priv;
    cdb_layer *src = &net->layers[p->from];
    size_t n = (size_t)l->batch * l->outputs, n_in = (size_t)l->batch * l->inputs;
    scale_channels_backward_kernel<<<(unsigned)n_in, THREADS>>>(
        GPU_F(net, l->delta, n), GPU_F(net, src->output, n), GPU_F(net, l->input, n_in), GPU_F(net, src->delta, n),
        l->input_delta ? GPU_F(net, l->input_delta, n_in) : NULL, l->out_h * l->out_w);
    LAUNCH_CHECK(scale_channels_backward_kernel);
}
