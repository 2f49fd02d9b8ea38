/* The GPU twin of optimizer.c: SGD and AdamW on the device copies, element
 * for element as the CPU (shared_math.h). */
#include <cmath>

#include "cuda_common.cuh"
#include "optimizer.h"
#include "shared_math.h"

/* frozen: the dropped mask in strict mode, else NULL. */
static __global__ void sgd_kernel(float *w, const float *g, float *m, size_t n, float lr, float wd, float mu, int nesterov,
                           const uint8_t *frozen, int channels, int inner, int axis_out)
{
    FOR_EACH(i, n)
    {
        if (frozen && frozen[tensor_channel_of(i, channels, inner, axis_out)]) continue;
        sgd_element(&w[i], g[i], &m[i], lr, wd, mu, nesterov);
    }
}

static __global__ void adamw_kernel(float *w, const float *g, float *m, float *v, size_t n, float lr, float wd, float b1,
                             float b2, float eps, float step_size, float bc2_sqrt, const uint8_t *frozen, int channels,
                             int inner, int axis_out)
{
    FOR_EACH(i, n)
    {
        if (frozen && frozen[tensor_channel_of(i, channels, inner, axis_out)]) continue;
        adamw_element(&w[i], g[i], &m[i], &v[i], lr, wd, b1, b2, eps, step_size, bc2_sqrt);
    }
}

static __global__ void ema_kernel(float *e, const float *m, size_t n, float w)
{
    FOR_EACH(i, n)
    {
        float diff = m[i] - e[i];
        e[i] = w < 0.5f ? e[i] + w * diff : m[i] - diff * (1.f - w);
    }
}

extern "C" void cdb_gpu_ema_update(cdb_network *net, float *ema, const float *w, size_t n, float weight)
{
    if (!n) return;
    ema_kernel<<<grid_for(n), THREADS>>>(GPU_F(net, ema, n), GPU_F(net, w, n), n, weight);
    LAUNCH_CHECK(ema_kernel);
}

extern "C" void cdb_gpu_optimizer_update(cdb_network *net, cdb_moments *state, const train_config *cfg, float lr,
                                         int step)
{
    int axis_out = net->dropback.axis == DROPBACK_AXIS_OUT;
    for (int i = 0; i < net->nparams; i++) {
        cdb_param *p = net->params[i];
        float wd = cdb_optimizer_decay(p, cfg);
        const uint8_t *frozen = cdb_dropback_frozen(&net->dropback, p);
        if (frozen) frozen = (const uint8_t *)cdb_gpu_twin(net, frozen, (size_t)cdb_dropback_mask_channels(p));
        float *w = GPU_F(net, p->value, p->size), *g = GPU_F(net, p->grad, p->size), *m = GPU_F(net, state[i].m1, p->size);
        if (cfg->optimizer == OPT_ADAMW) {
            float bc1 = 1.f - powf(cfg->beta1, (float)step), bc2 = 1.f - powf(cfg->beta2, (float)step);
            adamw_kernel<<<grid_for(p->size), THREADS>>>(w, g, m, GPU_F(net, state[i].m2, p->size), p->size, lr, wd,
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
