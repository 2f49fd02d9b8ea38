/* [avgpool] on the GPU: global average pooling. */
#include "layer_kernels.cuh"

extern "C" {
LAYER_GPU_TWINS(avgpool);
}

static __global__ void avgpool_forward_kernel(const float *in, float *out, int spatial, size_t n)
{
    FOR_EACH(i, n)
    {
        float s = 0;
        for (int k = 0; k < spatial; k++) s += in[i * spatial + k];
        out[i] = s / spatial;
    }
}

static __global__ void avgpool_backward_kernel(const float *delta, float *in_delta, int spatial, size_t n)
{
    FOR_EACH(i, n) in_delta[i] += delta[i / spatial] / spatial;
}

void cdb_avgpool_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    (void)train;
    size_t n = (size_t)l->batch * l->c;
    avgpool_forward_kernel<<<grid_for(n), THREADS>>>(GPU_F(net, l->input, (size_t)l->batch * l->inputs),
                                                     GPU_F(net, l->output, n), l->h * l->w, n);
    LAUNCH_CHECK(avgpool_forward_kernel);
}

void cdb_avgpool_backward_gpu(cdb_layer *l, cdb_network *net)
{
    if (!l->input_delta) return;
    size_t n_in = (size_t)l->batch * l->inputs;
    avgpool_backward_kernel<<<grid_for(n_in), THREADS>>>(GPU_F(net, l->delta, (size_t)l->batch * l->c),
                                                         GPU_F(net, l->input_delta, n_in), l->h * l->w, n_in);
    LAUNCH_CHECK(avgpool_backward_kernel);
}
