/* Network-level GPU steps: the ChannelDropBack gradient mask and the
 * optimizers, element for element as dropback.c and optimizer.c. */
#include <cmath>

#include "cuda_common.cuh"

__device__ static int channel_of(size_t i, int channels, int inner, int axis_out)
{
    if (axis_out) return (int)(i / ((size_t)channels * inner));
    return (int)((i / inner) % channels);
}

__global__ void mask_gradient_kernel(float *grad, size_t n, const uint8_t *dropped, int channels, int inner,
                                     int axis_out, float keep)
{
    FOR_EACH(i, n) grad[i] = dropped[channel_of(i, channels, inner, axis_out)] ? 0.f : grad[i] / keep;
}

extern "C" void gpu_mask_gradient(cdb_network *net, int param_index)
{
    cdb_param *p = net->params[param_index];
    if (!p->selected) return;
    /* The mask was drawn on the host from the run's dropback stream. */
    gpu_push(net, p->dropped, (size_t)p->mask_channels);
    const uint8_t *dropped = (const uint8_t *)gpu_twin(net, p->dropped, (size_t)p->mask_channels);
    mask_gradient_kernel<<<grid_for(p->size), THREADS>>>(GPU_F(net, p->grad, p->size), p->size, dropped, p->channels,
                                                         p->inner, net->dropback.axis == DROPBACK_AXIS_OUT, p->keep);
    LAUNCH_CHECK(mask_gradient_kernel);
}

/* frozen: the dropped mask in strict mode, else NULL. */
__global__ void sgd_kernel(float *w, const float *g, float *m, size_t n, float lr, float wd, float mu, int nesterov,
                           const uint8_t *frozen, int channels, int inner, int axis_out)
{
    FOR_EACH(i, n)
    {
        if (frozen && frozen[channel_of(i, channels, inner, axis_out)]) continue;
        float d = g[i] + wd * w[i];
        if (mu != 0) {
            m[i] = mu * m[i] + d;
            d = nesterov ? d + mu * m[i] : m[i];
        }
        w[i] -= lr * d;
    }
}

__global__ void adamw_kernel(float *w, const float *g, float *m, float *v, size_t n, float lr, float wd, float b1,
                             float b2, float eps, float step_size, float bc2_sqrt, const uint8_t *frozen, int channels,
                             int inner, int axis_out)
{
    FOR_EACH(i, n)
    {
        if (frozen && frozen[channel_of(i, channels, inner, axis_out)]) continue;
        w[i] *= 1.f - lr * wd;
        m[i] = b1 * m[i] + (1.f - b1) * g[i];
        v[i] = b2 * v[i] + (1.f - b2) * g[i] * g[i];
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        w[i] -= step_size * m[i] / denom;
    }
}

extern "C" void gpu_optimizer_update(cdb_network *net, float lr, int step)
{
    const train_config *cfg = &net->train;
    int strict = net->dropback.mode == DROPBACK_MODE_STRICT, axis_out = net->dropback.axis == DROPBACK_AXIS_OUT;
    for (int i = 0; i < net->nparams; i++) {
        cdb_param *p = net->params[i];
        float wd = p->decay ? cfg->decay : 0.f;
        const uint8_t *frozen = NULL;
        if (strict && p->selected) frozen = (const uint8_t *)gpu_twin(net, p->dropped, (size_t)p->mask_channels);
        float *w = GPU_F(net, p->value, p->size), *g = GPU_F(net, p->grad, p->size), *m = GPU_F(net, p->moment1, p->size);
        if (cfg->optimizer == OPT_ADAMW) {
            float bc1 = 1.f - powf(cfg->beta1, (float)step), bc2 = 1.f - powf(cfg->beta2, (float)step);
            adamw_kernel<<<grid_for(p->size), THREADS>>>(w, g, m, GPU_F(net, p->moment2, p->size), p->size, lr, wd,
                                                         cfg->beta1, cfg->beta2, cfg->eps, lr / bc1, sqrtf(bc2), frozen,
                                                         p->channels, p->inner, axis_out);
            LAUNCH_CHECK(adamw_kernel);
        } else {
            sgd_kernel<<<grid_for(p->size), THREADS>>>(w, g, m, p->size, lr, wd, cfg->momentum, cfg->nesterov, frozen,
                                                       p->channels, p->inner, axis_out);
            LAUNCH_CHECK(sgd_kernel);
        }
    }
}
