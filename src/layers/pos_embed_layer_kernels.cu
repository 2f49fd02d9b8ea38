/* [pos_embed] on the GPU. */
#include "layer_kernels.cuh"
extern "C" {
#include "pos_embed_layer.h"
}

extern "C" {
LAYER_GPU_TWINS(pos_embed);
}

static __global__ void pos_forward_kernel(const float *in, const float *embedding, float *out, int per_image, size_t n)
{
    FOR_EACH(i, n) out[i] = in[i] + embedding[i % per_image];
}

static __global__ void pos_grad_kernel(const float *delta, float *grad, int per_image, int batch)
{
    FOR_EACH(k, (size_t)per_image)
    {
        float s = 0;
        for (int b = 0; b < batch; b++) s += delta[(size_t)b * per_image + k];
        grad[k] += s;
    }
}

void cdb_pos_embed_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    (void)train;
    pos_priv *p = (pos_priv *)l->priv;
    size_t n = (size_t)l->batch * l->inputs;
    pos_forward_kernel<<<grid_for(n), THREADS>>>(GPU_F(net, l->input, n), GPU_F(net, p->embedding->value, l->inputs),
                                                 GPU_F(net, l->output, n), l->inputs, n);
    LAUNCH_CHECK(pos_forward_kernel);
}

void cdb_pos_embed_backward_gpu(cdb_layer *l, cdb_network *net)
{
    pos_priv *p = (pos_priv *)l->priv;
    size_t n = (size_t)l->batch * l->inputs;
    const float *delta = GPU_F(net, l->delta, n);
    pos_grad_kernel<<<grid_for(l->inputs), THREADS>>>(delta, GPU_F(net, p->embedding->grad, l->inputs), l->inputs,
                                                      l->batch);
    LAUNCH_CHECK(pos_grad_kernel);
    if (l->input_delta) cdb_axpy_gpu(n, 1.f, delta, GPU_F(net, l->input_delta, n));
}
