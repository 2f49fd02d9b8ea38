#include "optimizer.h"

#include <math.h>

void optimizer_update_param(cdb_param *p, const train_config *cfg, float lr, int step, const uint8_t *frozen_channels,
                            dropback_axis axis)
{
    if (!p->moment1) p->moment1 = xcalloc(p->size, sizeof(float));
    if (!p->moment2 && cfg->optimizer == OPT_ADAMW) p->moment2 = xcalloc(p->size, sizeof(float));
    float wd = p->decay ? cfg->decay : 0.f;
    float *w = p->value, *g = p->grad, *m = p->moment1, *v = p->moment2;
    size_t n = p->size;
    if (cfg->optimizer == OPT_ADAMW) {
        float b1 = cfg->beta1, b2 = cfg->beta2;
        float bc1 = 1.f - powf(b1, (float)step), bc2 = 1.f - powf(b2, (float)step);
        float step_size = lr / bc1, bc2_sqrt = sqrtf(bc2);
        for (size_t i = 0; i < n; i++) {
            if (frozen_channels && frozen_channels[dropback_channel_of(p, axis, i)]) continue;
            w[i] *= 1.f - lr * wd;
            m[i] = b1 * m[i] + (1.f - b1) * g[i];
            v[i] = b2 * v[i] + (1.f - b2) * g[i] * g[i];
            float denom = sqrtf(v[i]) / bc2_sqrt + cfg->eps;
            w[i] -= step_size * m[i] / denom;
        }
        return;
    }
    float mu = cfg->momentum;
    for (size_t i = 0; i < n; i++) {
        if (frozen_channels && frozen_channels[dropback_channel_of(p, axis, i)]) continue;
        float d = g[i] + wd * w[i];
        if (mu != 0) {
            /* PyTorch initialises the buffer to d on the first step: with the
             * buffer starting at zero, mu*0 + d gives exactly that. */
            m[i] = mu * m[i] + d;
            d = cfg->nesterov ? d + mu * m[i] : m[i];
        }
        w[i] -= lr * d;
    }
}

void optimizer_update(cdb_network *net, float lr, int step)
{
    int strict = net->dropback.mode == DROPBACK_MODE_STRICT;
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < net->nparams; i++) {
        cdb_param *p = net->params[i];
        const uint8_t *frozen = strict && p->selected ? p->dropped : NULL;
        optimizer_update_param(p, &net->train, lr, step, frozen, net->dropback.axis);
    }
}
