/* ChannelDropBack: the one place where layer selection, channel masks and the
 * rate schedule live (see ../shared/spec or docs/dropback.md). Layers take
 * part by declaring a weight tensor eligible; the network draws masks once per
 * optimizer step and applies them to each selected tensor's gradient. */
#ifndef CDB_DROPBACK_H
#define CDB_DROPBACK_H

#include <stdint.h>

#include "cfg.h"
#include "param.h"

typedef enum { DROPBACK_POLICY_BERNOULLI, DROPBACK_POLICY_SINGLE } dropback_policy;
typedef enum { DROPBACK_MODE_GRAD, DROPBACK_MODE_STRICT } dropback_mode;
typedef enum { DROPBACK_AXIS_IN, DROPBACK_AXIS_OUT } dropback_axis;

typedef struct {
    int enabled;               /* [net] channel_dropback */
    float layer_rate;          /* r after the second milestone */
    float layer_rate_init;     /* r before the first milestone */
    float milestones[2];       /* fractions of max_batches */
    float channel_rate;        /* default drop probability per channel */
    int skip;                  /* first eligible tensors never selected */
    dropback_policy policy;
    dropback_mode mode;
    dropback_axis axis;
    int skip_compute;          /* extra: skip the weight-gradient GEMM of dropped channels */
} dropback_config;

typedef struct {
    long steps;                /* steps counted */
    long selected;             /* tensors selected over those steps */
    double dropped_fraction;   /* sum of (1 - keep) over selected tensors */
    double expected_selected;  /* sum over steps of the expected number selected */
} dropback_stats;

void dropback_config_defaults(dropback_config *cfg);
/* The [net] keys (channel_dropback, dropback_*), over the defaults: 0, or
 * -1 with the error recorded in r. */
int dropback_read_net_keys(cfg_reader *r, dropback_config *cfg);
/* A layer's own keys (channel_dropback, dropback_channel_rate), for the
 * eligible tensor it declares. */
void dropback_read_layer_keys(cfg_reader *r, cdb_param *weights);

/* r for the step about to run (0-based), per the three-stage schedule. */
float dropback_layer_rate(const dropback_config *cfg, int step, int max_batches);

/* Decide which eligible tensors take part: the first `skip` eligible tensors
 * are left out unless forced in with a per-layer channel_dropback=1, and a
 * per-layer channel_dropback=0 always leaves one out. Allocates masks. */
void dropback_resolve(const dropback_config *cfg, cdb_param **params, int n);

/* Draw this step's selection and channel masks from the dropback stream of
 * (seed, step) and add them to `stats`. Returns the number selected. */
int dropback_draw(const dropback_config *cfg, cdb_param **params, int n, uint64_t seed, int step,
                  int max_batches, dropback_stats *stats);

/* Zero the dropped channels of the gradient and divide it by keep. */
void dropback_mask_gradient(const cdb_param *p, dropback_axis axis);

/* Compute skipping: whether the weight-gradient GEMM of p may leave out its
 * dropped channels this step. */
static inline int dropback_skips(const dropback_config *cfg, const cdb_param *p)
{
    return cfg->skip_compute && p->selected && p->keep < 1.f;
}


/* Channel (on the mask axis) of element i of the tensor. */
static inline int dropback_channel_of(const cdb_param *p, dropback_axis axis, size_t i)
{
    if (axis == DROPBACK_AXIS_OUT) return (int)(i / ((size_t)p->channels * p->inner));
    return (int)((i / p->inner) % p->channels);
}

#endif
