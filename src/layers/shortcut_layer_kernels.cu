/* [shortcut] on the GPU. */
#include "layer_kernels.cuh"
extern "C" {
#include "shortcut_layer.h"
}

extern "C" {
LAYER_GPU_TWINS(shortcut);
}

__global__ void sum_kernel(const float *a, const float *b, float *out, size_t n)
{
    FOR_EACH(i, n) out[i] = a[i] + b[i];
}

/* out = a * scale[image] + b (drop_connect). */
__global__ void scaled_sum_kernel(const float *a, const float *scale, size_t per_image, const float *b, float *out,
                                  size_t n)
{
    FOR_EACH(i, n) out[i] = a[i] * scale[i / per_image] + b[i];
}

__global__ void scaled_accumulate_kernel(const float *delta, const float *scale, size_t per_image, float *in_delta,
                                         size_t n)
{
    FOR_EACH(i, n) in_delta[i] += delta[i] * scale[i / per_image];
}

void shortcut_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    shortcut_priv *p = (shortcut_priv *)l->priv;
    size_t n = (size_t)l->batch * l->outputs;
    float *out = GPU_F(net, l->output, n);
    float *z = p->act == ACT_LINEAR ? out : GPU_F(net, p->preact, n);
    /* The factors are drawn on the host, as on the CPU path, and uploaded. */
    shortcut_draw(l, net, train);
    if (p->drop_connect > 0) {
        gpu_push(net, p->branch_scale, (size_t)l->batch * sizeof(float));
        scaled_sum_kernel<<<grid_for(n), THREADS>>>(GPU_F(net, l->input, n), GPU_F(net, p->branch_scale, l->batch),
                                                    (size_t)l->outputs, GPU_F(net, net->layers[p->from].output, n), z,
                                                    n);
        LAUNCH_CHECK(scaled_sum_kernel);
    } else {
        sum_kernel<<<grid_for(n), THREADS>>>(GPU_F(net, l->input, n), GPU_F(net, net->layers[p->from].output, n), z, n);
        LAUNCH_CHECK(sum_kernel);
    }
    if (p->act != ACT_LINEAR) activate_gpu(p->act, z, out, n);
}

void shortcut_backward_gpu(cdb_layer *l, cdb_network *net)
{
    shortcut_priv *p = (shortcut_priv *)l->priv;
    size_t n = (size_t)l->batch * l->outputs;
    float *delta = GPU_F(net, l->delta, n);
    if (p->act != ACT_LINEAR) gradient_gpu(p->act, GPU_F(net, p->preact, n), delta, delta, n);
    axpy_gpu(n, 1.f, delta, GPU_F(net, net->layers[p->from].delta, n));
    if (!l->input_delta) return;
    if (p->drop_connect > 0) {
        scaled_accumulate_kernel<<<grid_for(n), THREADS>>>(delta, GPU_F(net, p->branch_scale, l->batch),
                                                           (size_t)l->outputs, GPU_F(net, l->input_delta, n), n);
        LAUNCH_CHECK(scaled_accumulate_kernel);
    } else {
        axpy_gpu(n, 1.f, delta, GPU_F(net, l->input_delta, n));
    }
}
