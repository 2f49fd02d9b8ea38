/* SGD exactly as PyTorch's torch.optim.SGD (momentum, dampening 0, nesterov,
 * weight decay) and AdamW as torch.optim.AdamW, on the (possibly masked)
 * gradient. In ChannelDropBack's strict mode, elements of dropped channels
 * are left completely untouched (no decay, no momentum step, state kept). */
#ifndef CDB_OPTIMIZER_H
#define CDB_OPTIMIZER_H

#include "network.h"
#include "train_config.h"

/* Allocate the optimizer's state (`state`: one cdb_moments per tensor, in
 * network order) where it is missing (once, before the first update): 0,
 * or -1 out of memory (recorded). cdb_optimizer_free frees the arrays. */
int cdb_optimizer_prepare(const cdb_network *net, cdb_moments *state, const train_config *cfg);
int cdb_optimizer_prepare_param(const cdb_param *p, cdb_moments *s, const train_config *cfg);
void cdb_optimizer_free(cdb_moments *state, int n);
/* Update every parameter of the network with learning rate lr; `step` is
 * the 1-based number of this update (AdamW's bias correction). */
void cdb_optimizer_update(cdb_network *net, cdb_moments *state, const train_config *cfg, float lr, int step);
/* The weight decay of tensor p: the cfg's, where the layer lets it decay
 * (p->decay) and, unless decay_norm_bias, only on dropback-eligible
 * tensors (weights; not biases and norm scales). */
static inline float cdb_optimizer_decay(const cdb_param *p, const train_config *cfg)
{
    return p->decay && (cfg->decay_norm_bias || p->eligible) ? cfg->decay : 0.f;
}
/* One tensor (exposed for tests). */
void cdb_optimizer_update_param(cdb_param *p, cdb_moments *s, const train_config *cfg, float lr, int step,
                                const uint8_t *frozen_channels, dropback_axis axis);

#endif
