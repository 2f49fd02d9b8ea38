/* [maxpool] on the GPU: one thread per output, Darknet's window geometry. */
#include <cfloat>

#include "layer_kernels.cuh"
extern "C" {
#include "maxpool_layer.h"
}

extern "C" {
LAYER_GPU_TWINS(maxpool);
}

static __global__ void maxpool_forward_kernel(const float *in, float *out, int *argmax, int channels, int h, int w, int out_h,
                                       int out_w, int size, int stride, int offset, size_t n)
{
    FOR_EACH(i, n)
    {
        int x = (int)(i % out_w), y = (int)((i / out_w) % out_h), c = (int)((i / ((size_t)out_w * out_h)) % channels);
        size_t b = i / ((size_t)out_w * out_h * channels);
        const float *plane = in + (b * channels + c) * (size_t)h * w;
        float best = -FLT_MAX;
        int best_i = -1;
        for (int ky = 0; ky < size; ky++)
            for (int kx = 0; kx < size; kx++) {
                int iy = y * stride + ky + offset, ix = x * stride + kx + offset;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                float v = plane[iy * w + ix];
                if (v > best) {
                    best = v;
                    best_i = iy * w + ix;
                }
            }
        out[i] = best_i >= 0 ? best : 0;
        argmax[i] = best_i < 0 ? -1 : c * h * w + best_i;
    }
}

/* Each input pixel gathers the outputs whose maximum it was (no atomics). */
static __global__ void maxpool_backward_kernel(const float *delta, const int *argmax, float *in_delta, int channels, int h,
                                        int w, int out_h, int out_w, int size, int stride, int offset, size_t n)
{
    FOR_EACH(i, n)
    {
        int ix = (int)(i % w), iy = (int)((i / w) % h), c = (int)((i / ((size_t)w * h)) % channels);
        size_t b = i / ((size_t)w * h * channels);
        int me = (c * h + iy) * w + ix;
        float s = 0;
        /* outputs y with y*stride + offset <= iy < y*stride + offset + size */
        int y_first = max(0, (iy - offset - size + stride) / stride), y_last = min(out_h - 1, (iy - offset) / stride);
        int x_first = max(0, (ix - offset - size + stride) / stride), x_last = min(out_w - 1, (ix - offset) / stride);
        if (iy - offset - size + stride < 0) y_first = 0;
        if (ix - offset - size + stride < 0) x_first = 0;
        for (int y = y_first; y <= y_last; y++) {
            int y0 = y * stride + offset;
            if (iy < y0 || iy >= y0 + size) continue;
            for (int x = x_first; x <= x_last; x++) {
                int x0 = x * stride + offset;
                if (ix < x0 || ix >= x0 + size) continue;
                size_t o = ((b * channels + c) * out_h + y) * out_w + x;
                if (argmax[o] == me) s += delta[o];
            }
        }
        in_delta[i] += s;
    }
}

void cdb_maxpool_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    (void)train;
    maxpool_priv *p = (maxpool_priv *)l->priv;
    size_t n = (size_t)l->batch * l->outputs;
    maxpool_forward_kernel<<<grid_for(n), THREADS>>>(GPU_F(net, l->input, (size_t)l->batch * l->inputs),
                                                     GPU_F(net, l->output, n),
                                                     (int *)cdb_gpu_twin(net, p->argmax, n * sizeof(int)), l->c, l->h, l->w,
                                                     l->out_h, l->out_w, p->size, p->stride, -p->padding / 2, n);
    LAUNCH_CHECK(maxpool_forward_kernel);
}

void cdb_maxpool_backward_gpu(cdb_layer *l, cdb_network *net)
{
    maxpool_priv *p = (maxpool_priv *)l->priv;
    if (!l->input_delta) return;
    size_t n_in = (size_t)l->batch * l->inputs, n = (size_t)l->batch * l->outputs;
    maxpool_backward_kernel<<<grid_for(n_in), THREADS>>>(GPU_F(net, l->delta, n),
                                                         (const int *)cdb_gpu_twin(net, p->argmax, n * sizeof(int)),
                                                         GPU_F(net, l->input_delta, n_in), l->c, l->h, l->w, l->out_h,
                                                         l->out_w, p->size, p->stride, -p->padding / 2, n_in);
    LAUNCH_CHECK(maxpool_backward_kernel);
}
