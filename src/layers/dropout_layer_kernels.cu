/* [dropout] on the GPU. The mask is drawn on the host from the same stream
 * as the CPU path (so CPU and GPU drop the same units) and uploaded. */
#include "layer_kernels.cuh"
extern "C" {
#include "dropout_layer.h"
}

extern "C" {
LAYER_GPU_TWINS(dropout);
}

static __global__ void dropout_kernel(const float *in, float *out, const uint8_t *keep, float scale, size_t n)
{
    FOR_EACH(i, n) out[i] = keep[i] ? in[i] * scale : 0.f;
}

static __global__ void dropout_backward_kernel(const float *delta, float *in_delta, const uint8_t *keep, float scale, size_t n)
{
    FOR_EACH(i, n) if (keep[i]) in_delta[i] += delta[i] * scale;
}

void cdb_dropout_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    dropout_priv *p = (dropout_priv *)l->priv;
    size_t n = (size_t)l->batch * l->inputs;
    float scale = 1.f;
    if (!train || p->probability == 0) {
        memset(p->keep, 1, n);
    } else {
        cdb_rng rng = cdb_layer_pass_rng(l, net);
        for (size_t i = 0; i < n; i++) p->keep[i] = cdb_rng_uniform(&rng) >= p->probability;
        scale = 1.f / (1.f - p->probability);
    }
    cdb_gpu_push(net, p->keep, n);
    dropout_kernel<<<grid_for(n), THREADS>>>(GPU_F(net, l->input, n), GPU_F(net, l->output, n),
                                             (const uint8_t *)cdb_gpu_twin(net, p->keep, n), scale, n);
    LAUNCH_CHECK(dropout_kernel);
}

void cdb_dropout_backward_gpu(cdb_layer *l, cdb_network *net)
{
    dropout_priv *p = (dropout_priv *)l->priv;
    if (!l->input_delta) return;
    size_t n = (size_t)l->batch * l->inputs;
    float scale = p->probability > 0 ? 1.f / (1.f - p->probability) : 1.f;
    dropout_backward_kernel<<<grid_for(n), THREADS>>>(GPU_F(net, l->delta, n), GPU_F(net, l->input_delta, n),
                                                      (const uint8_t *)cdb_gpu_twin(net, p->keep, n), scale, n);
    LAUNCH_CHECK(dropout_backward_kernel);
}
