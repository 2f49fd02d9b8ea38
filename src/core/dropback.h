/* ChannelDropBack: the one place where layer selection, channel masks and the
 * rate schedule live (docs/dropback.md states the semantics). Layers take
 * part by declaring a weight tensor eligible; the network draws masks once per
 * optimizer step and applies them to each selected tensor's gradient. */
#ifndef CDB_DROPBACK_H
#define CDB_DROPBACK_H

#include <stdint.h>
#include <stdio.h>

#include "cdbnet.h"

#include "cfg.h"
#include "param.h"
#include "shared_math.h"

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

/* A tensor's state (param.h: cdb_param.db), read through these verbs. */
typedef struct cdb_dropback_tensor cdb_dropback_tensor;
/* Give an eligible tensor its state (cdb_layer_add_param does): 0, or -1
 * out of memory; detach frees it. */
int cdb_dropback_attach(cdb_param *p);
void cdb_dropback_detach(cdb_param *p);
/* The layer's own choice for it: override -1 (follow [net]), 0 or 1, and
 * its channel rate (-1: [net]'s). */
void cdb_dropback_configure(cdb_param *p, int override, float channel_rate);
int cdb_dropback_override(const cdb_param *p);
/* Whether it takes part in layer selection, and at what channel rate. */
int cdb_dropback_takes_part(const cdb_param *p);
float cdb_dropback_channel_rate(const cdb_param *p);
/* This step's mask: selected or not, keep (kept channels / channels; 1
 * when not selected), the dropped channels on the mask axis (NULL when not
 * selected) and how many channels the mask has. */
int cdb_dropback_selected(const cdb_param *p);
float cdb_dropback_keep(const cdb_param *p);
const uint8_t *cdb_dropback_mask(const cdb_param *p);
int cdb_dropback_mask_channels(const cdb_param *p);
/* The gradient sum of a data-parallel step leaves out what this step's
 * mask drops: p's gradient as runs of *run consecutive floats, run r
 * belonging to mask channel r % *period, and the dropped channels; NULL
 * when nothing is dropped (sum all of it). */
const uint8_t *cdb_dropback_dropped_runs(const dropback_config *cfg, const cdb_param *p, size_t *run, int *period);
/* Where the masks acted on p over the draws of this process. */
typedef struct {
    int takes_part, mask_channels; /* mask_channels 0: no statistics */
    float channel_rate;
    long draws, selected;          /* steps it could be selected, and was */
    double kept_sum;               /* sum of keep over the selections */
    const uint32_t *drop_count;    /* (mask_channels) steps that dropped each channel */
} dropback_tensor_stats;
/* 1 when p has statistics (eligible and resolved), else 0 and zeros. */
int cdb_dropback_tensor_stats(const cdb_param *p, dropback_tensor_stats *out);

void cdb_dropback_config_defaults(dropback_config *cfg);
/* The [net] keys (channel_dropback, dropback_*), over the defaults: 0, or
 * -1 with the error recorded in r. */
int cdb_dropback_read_net_keys(cfg_reader *r, dropback_config *cfg);
/* A layer's own keys (channel_dropback, dropback_channel_rate), for the
 * eligible tensor it declares. */
void cdb_dropback_read_layer_keys(cfg_reader *r, cdb_param *weights);

/* r for the step about to run (0-based), per the three-stage schedule. */
float cdb_dropback_layer_rate(const dropback_config *cfg, int step, int max_batches);

/* Decide which eligible tensors take part: the first `skip` eligible tensors
 * are left out unless forced in with a per-layer channel_dropback=1, and a
 * per-layer channel_dropback=0 always leaves one out. Allocates masks: 0,
 * or -1 out of memory. */
int cdb_dropback_resolve(const dropback_config *cfg, cdb_param **params, int n);

/* Draw this step's selection and channel masks from the dropback stream of
 * (seed, step) and add them to `stats`. Returns the number selected. */
int cdb_dropback_draw(const dropback_config *cfg, cdb_param **params, int n, uint64_t seed, int step,
                  int max_batches, dropback_stats *stats);

/* What a training step calls, in this order (cdb_trainer_step):
 * cdb_dropback_begin_step draws the selection and masks of step `step` (0-based)
 * of a run of `max_batches`, counted in `stats` (nothing when no tensor
 * takes part; returns the number selected); layers compute the
 * gradient of their eligible tensors with cdb_dropback_weight_grad (or, for
 * kernels of their own, the lists of cdb_dropback_skip_lists); after the last
 * subdivision, cdb_dropback_apply_masks zeroes the dropped channels and rescales
 * the rest by 1/keep, on the CPU or the GPU; the optimizer leaves the
 * channels cdb_dropback_frozen names untouched (strict mode). */
int cdb_dropback_begin_step(cdb_network *net, int step, int max_batches, dropback_stats *stats);
/* The weight-gradient GEMM of an eligible tensor, C (M, N) += op(A) op(B),
 * where C holds rows row_base .. row_base+M-1 of the tensor's gradient and
 * its N columns are the tensor's channels, p->inner columns each. It is the
 * fixed-order GEMM (gemm.h), so an element's bits do not depend on which
 * others are computed. With compute skipping on and the tensor selected,
 * only the kept channels (axis in: columns; axis out: rows) are computed, as
 * one GEMM on compacted copies of the operands: bit-identical to computing
 * everything and masking. */
void cdb_dropback_weight_grad(cdb_network *net, const cdb_param *p, int row_base, int trans_a, int trans_b, int M, int N,
                          int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc);
/* Compute skipping for kernels that take skip lists (the direct
 * convolutions): the dropped input channels (axis in) and dropped rows
 * (axis out) of p this step, each NULL when nothing may be skipped. */
void cdb_dropback_skip_lists(const dropback_config *cfg, const cdb_param *p, const uint8_t **in_channels,
                         const uint8_t **rows);
void cdb_dropback_apply_masks(cdb_network *net);
/* Strict mode: the channels (on the mask axis) the optimizer must leave
 * untouched this step, or NULL. */
const uint8_t *cdb_dropback_frozen(const dropback_config *cfg, const cdb_param *p);
/* Turn every tensor's ChannelDropBack off (the -nodropback flag). */
void cdb_dropback_disable(cdb_network *net);
#ifdef GPU
/* The GPU twin (dropback_kernels.cu): the mask on the device copy of p's gradient. */
void cdb_dropback_mask_gradient_gpu(cdb_network *net, const cdb_param *p);
#endif

/* Channel (on the mask axis) of element i of the tensor. */
static inline int dropback_channel_of(const cdb_param *p, dropback_axis axis, size_t i)
{
    return tensor_channel_of(i, p->channels, p->inner, axis == DROPBACK_AXIS_OUT);
}

#endif
