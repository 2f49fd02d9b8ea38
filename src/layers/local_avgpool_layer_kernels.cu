/* [local_avgpool] on the GPU: one thread per output for the forward pass,
 * one per input pixel for the backward pass (it gathers the windows that
 * cover it: no atomics, a fixed order). */
#include "layer_kernels.cuh"
extern "C" {
#include "local_avgpool_layer.h"
}

extern "C" {
LAYER_GPU_TWINS(local_avgpool);
}

__device__ static int clipped_count(int y0, int x0, int size, int h, int w)
{
    int ya = max(y0, 0), yb = min(y0 + size, h), xa = max(x0, 0), xb = min(x0 + size, w);
    return (yb - ya) * (xb - xa);
}

static __global__ void local_avgpool_forward_kernel(const float *in, float *out, int h, int w, int oh, int ow, int size,
                                             int stride, int off, size_t n)
{
    FOR_EACH(i, n)
    {
        int x = (int)(i % ow), y = (int)(i / ow % oh);
        size_t plane = i / ((size_t)ow * oh);
        const float *src = in + plane * h * w;
        int y0 = y * stride + off, x0 = x * stride + off;
        float s = 0;
        for (int iy = max(y0, 0); iy < min(y0 + size, h); iy++)
            for (int ix = max(x0, 0); ix < min(x0 + size, w); ix++) s += src[iy * w + ix];
        int count = clipped_count(y0, x0, size, h, w);
        out[i] = count > 0 ? s / count : 0;
    }
}

static __global__ void local_avgpool_backward_kernel(const float *delta, float *in_delta, int h, int w, int oh, int ow,
                                              int size, int stride, int off, size_t n)
{
    FOR_EACH(i, n)
    {
        int x = (int)(i % w), y = (int)(i / w % h);
        size_t plane = i / ((size_t)w * h);
        const float *d = delta + plane * oh * ow;
        /* outputs whose window [o*stride+off, o*stride+off+size) holds y */
        int oy0 = max(0, (y - off - size + stride) / stride), oy1 = min(oh - 1, (y - off) / stride);
        int ox0 = max(0, (x - off - size + stride) / stride), ox1 = min(ow - 1, (x - off) / stride);
        float g = 0;
        for (int oy = oy0; oy <= oy1; oy++)
            for (int ox = ox0; ox <= ox1; ox++) {
                int y0 = oy * stride + off, x0 = ox * stride + off;
                if (y < y0 || y >= y0 + size || x < x0 || x >= x0 + size) continue;
                g += d[oy * ow + ox] / clipped_count(y0, x0, size, h, w);
            }
        in_delta[i] += g;
    }
}

void cdb_local_avgpool_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    (void)train;
    const local_avgpool_priv *p = (const local_avgpool_priv *)l->priv;
    size_t n = (size_t)l->batch * l->outputs;
    local_avgpool_forward_kernel<<<grid_for(n), THREADS>>>(GPU_F(net, l->input, (size_t)l->batch * l->inputs),
                                                           GPU_F(net, l->output, n), l->h, l->w, l->out_h, l->out_w,
                                                           p->size, p->stride, -p->padding / 2, n);
    LAUNCH_CHECK(local_avgpool_forward_kernel);
}

void cdb_local_avgpool_backward_gpu(cdb_layer *l, cdb_network *net)
{
    if (!l->input_delta) return;
    const local_avgpool_priv *p = (const local_avgpool_priv *)l->priv;
    size_t n = (size_t)l->batch * l->inputs;
    local_avgpool_backward_kernel<<<grid_for(n), THREADS>>>(GPU_F(net, l->delta, (size_t)l->batch * l->outputs),
                                                            GPU_F(net, l->input_delta, n), l->h, l->w, l->out_h,
                                                            l->out_w, p->size, p->stride, -p->padding / 2, n);
    LAUNCH_CHECK(local_avgpool_backward_kernel);
}
