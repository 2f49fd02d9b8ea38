/* [route] on the GPU: channel concatenation as strided copies. */
#include "layer_kernels.cuh"
extern "C" {
#include "route_layer.h"
}

extern "C" {
LAYER_GPU_TWINS(route);
}

/* route (batch, route_stride) at column offset <-> the part of a source
 * (batch, src_stride) from column src_offset, per_image floats an image:
 * forward copies the part into the route, backward adds the route's delta
 * to the source's. */
static __global__ void route_copy_kernel(const float *from, float *to, int per_image, int src_stride, int src_offset,
                                  int route_stride, int offset, int batch, int backward)
{
    FOR_EACH(i, (size_t)batch * per_image)
    {
        size_t b = i / per_image, k = i % per_image;
        size_t s = b * src_stride + src_offset + k, r = b * route_stride + offset + k;
        if (backward)
            to[s] += from[r];
        else
            to[r] = from[s];
    }
}

void cdb_route_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    (void)train;
    route_priv *p = (route_priv *)l->priv;
    float *out = GPU_F(net, l->output, (size_t)l->batch * l->outputs);
    int offset = 0;
    for (int i = 0; i < p->n; i++) {
        const cdb_layer *src = &net->layers[p->from[i]];
        size_t from, part;
        route_part(p, src, &from, &part);
        route_copy_kernel<<<grid_for((size_t)l->batch * part), THREADS>>>(
            GPU_F(net, src->output, (size_t)src->batch * src->outputs), out, (int)part, src->outputs, (int)from,
            l->outputs, offset, l->batch, 0);
        LAUNCH_CHECK(route_copy_kernel);
        offset += (int)part;
    }
}

void cdb_route_backward_gpu(cdb_layer *l, cdb_network *net)
{
    route_priv *p = (route_priv *)l->priv;
    const float *delta = GPU_F(net, l->delta, (size_t)l->batch * l->outputs);
    int offset = 0;
    for (int i = 0; i < p->n; i++) {
        cdb_layer *src = &net->layers[p->from[i]];
        size_t from, part;
        route_part(p, src, &from, &part);
        route_copy_kernel<<<grid_for((size_t)l->batch * part), THREADS>>>(
            delta, GPU_F(net, src->delta, (size_t)src->batch * src->outputs), (int)part, src->outputs, (int)from,
            l->outputs, offset, l->batch, 1);
        LAUNCH_CHECK(route_copy_kernel);
        offset += (int)part;
    }
}
