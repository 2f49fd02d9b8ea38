/* [route] on the GPU: channel concatenation as strided copies. */
#include "layer_kernels.cuh"
extern "C" {
#include "route_layer.h"
}

extern "C" {
LAYER_GPU_TWINS(route);
}

/* dst (batch, dst_stride) at column offset <-> src (batch, n_per_image). */
__global__ void route_copy_kernel(const float *src, float *dst, int per_image, int dst_stride, int offset, int batch,
                                  int accumulate_back)
{
    FOR_EACH(i, (size_t)batch * per_image)
    {
        size_t b = i / per_image, k = i % per_image;
        if (accumulate_back)
            dst[i] += src[b * dst_stride + offset + k]; /* here src is the route's delta */
        else
            dst[b * dst_stride + offset + k] = src[i];
    }
}

void route_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    (void)train;
    route_priv *p = (route_priv *)l->priv;
    float *out = GPU_F(net, l->output, (size_t)l->batch * l->outputs);
    int offset = 0;
    for (int i = 0; i < p->n; i++) {
        const cdb_layer *src = &net->layers[p->from[i]];
        route_copy_kernel<<<grid_for((size_t)l->batch * src->outputs), THREADS>>>(
            GPU_F(net, src->output, (size_t)src->batch * src->outputs), out, src->outputs, l->outputs, offset, l->batch, 0);
        LAUNCH_CHECK(route_copy_kernel);
        offset += src->outputs;
    }
}

void route_backward_gpu(cdb_layer *l, cdb_network *net)
{
    route_priv *p = (route_priv *)l->priv;
    const float *delta = GPU_F(net, l->delta, (size_t)l->batch * l->outputs);
    int offset = 0;
    for (int i = 0; i < p->n; i++) {
        cdb_layer *src = &net->layers[p->from[i]];
        route_copy_kernel<<<grid_for((size_t)l->batch * src->outputs), THREADS>>>(
            delta, GPU_F(net, src->delta, (size_t)src->batch * src->outputs), src->outputs, l->outputs, offset, l->batch, 1);
        LAUNCH_CHECK(route_copy_kernel);
        offset += src->outputs;
    }
}
