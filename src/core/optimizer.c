#include "optimizer.h"

#include <math.h>
#include <stdlib.h>

#include "shared_math.h"

#ifdef GPU
#include "cuda_utils.h"
#endif

int cdb_optimizer_prepare_param(const cdb_param *p, cdb_moments *s, const train_config *cfg)
{
    if (!s->m1) s->m1 = cdb_xcalloc(p->size, sizeof(float));
    if (!s->m2 && cfg->optimizer == OPT_ADAMW) s->m2 = cdb_xcalloc(p->size, sizeof(float));
    return !s->m1 || (cfg->optimizer == OPT_ADAMW && !s->m2) ? -1 : 0;
}

int cdb_optimizer_prepare(const cdb_network *net, cdb_moments *state, const train_config *cfg)
{
    /* on a GPU the new (zero) moments are uploaded where the update first
     * asks for their device twins (cdb_gpu_twin) */
    for (int i = 0; i < net->nparams; i++)
        if (cdb_optimizer_prepare_param(net->params[i], &state[i], cfg)) return -1;
    return 0;
}

void cdb_optimizer_free(cdb_moments *state, int n)
{
    for (int i = 0; state && i < n; i++) {
        free(state[i].m1);
        free(state[i].m2);
        state[i].m1 = state[i].m2 = NULL;
    }
}

void cdb_optimizer_update_param(cdb_param *p, cdb_moments *s, const train_config *cfg, float lr, int step,
                                const uint8_t *frozen_channels, dropback_axis axis)
{
    if (cdb_optimizer_prepare_param(p, s, cfg)) return;
    float wd = cdb_optimizer_decay(p, cfg);
    float *w = p->value, *g = p->grad, *m = s->m1, *v = s->m2;
    size_t n = p->size;
    if (cfg->optimizer == OPT_ADAMW) {
        float bc1 = 1.f - powf(cfg->beta1, (float)step), bc2 = 1.f - powf(cfg->beta2, (float)step);
        float step_size = lr / bc1, bc2_sqrt = sqrtf(bc2);
        for (size_t i = 0; i < n; i++) {
            if (frozen_channels && frozen_channels[dropback_channel_of(p, axis, i)]) continue;
            adamw_element(&w[i], g[i], &m[i], &v[i], lr, wd, cfg->beta1, cfg->beta2, cfg->eps, step_size, bc2_sqrt);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (frozen_channels && frozen_channels[dropback_channel_of(p, axis, i)]) continue;
        sgd_element(&w[i], g[i], &m[i], lr, wd, cfg->momentum, cfg->nesterov);
    }
}

void cdb_optimizer_update(cdb_network *net, cdb_moments *state, const train_config *cfg, float lr, int step)
{
#ifdef GPU
    if (net->gpu) {
        cdb_gpu_optimizer_update(net, state, cfg, lr, step);
        return;
    }
#endif
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < net->nparams; i++) {
        cdb_param *p = net->params[i];
        cdb_optimizer_update_param(p, &state[i], cfg, lr, step, cdb_dropback_frozen(&net->dropback, p), net->dropback.axis);
    }
}
