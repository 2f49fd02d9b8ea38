/* ChannelDropBack (docs/dropback.md): configuration, which tensors take
 * part, the per-step draw, the weight-gradient product with compute
 * skipping, the mask and strict mode's frozen channels, and each tensor's
 * state (struct cdb_dropback_tensor), which no other file reads. */
#include "dropback.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "gemm.h"
#include "network.h"
#include "utils.h"
#ifdef GPU
#include "cuda_utils.h"
#endif

/* ChannelDropBack's state of one eligible tensor (cdb_param.db): its
 * per-layer choice, whether it takes part, this step's mask, and where the
 * masks acted over the run. Only this file (and the verbs of dropback.h)
 * reads it. */
struct cdb_dropback_tensor {
    int override;          /* -1: follow [net]; 0/1 from the layer's channel_dropback */
    float channel_rate;    /* drop probability of each channel (-1: [net]'s, until resolved) */
    int takes_part;        /* takes part in layer selection */
    /* this step's mask (valid after the draw) */
    int selected;
    float keep;            /* kept channels / channels; 1 when not selected */
    uint8_t *dropped;      /* (mask_channels) 1 = dropped this step */
    int mask_channels;     /* channels (axis in) or rows (axis out) */
    /* where the masks acted, over the draws of this process: draws, how
     * many selected the tensor, the sum of keep over those, and per
     * channel how many dropped it */
    long draws, times_selected;
    double kept_sum;
    uint32_t *drop_count;  /* (mask_channels) */
};

int cdb_dropback_attach(cdb_param *p)
{
    p->db = cdb_xcalloc(1, sizeof(*p->db));
    if (!p->db) return -1;
    p->db->override = -1;
    p->db->channel_rate = -1;
    p->db->keep = 1;
    return 0;
}

void cdb_dropback_detach(cdb_param *p)
{
    if (!p->db) return;
    free(p->db->dropped);
    free(p->db->drop_count);
    free(p->db);
    p->db = NULL;
}

void cdb_dropback_configure(cdb_param *p, int override, float channel_rate)
{
    if (!p->db) return;
    p->db->override = override;
    p->db->channel_rate = channel_rate;
}

int cdb_dropback_override(const cdb_param *p) { return p->db ? p->db->override : -1; }
int cdb_dropback_takes_part(const cdb_param *p) { return p->db && p->db->takes_part; }
float cdb_dropback_channel_rate(const cdb_param *p) { return p->db ? p->db->channel_rate : 0.f; }
int cdb_dropback_selected(const cdb_param *p) { return p->db && p->db->selected; }
float cdb_dropback_keep(const cdb_param *p) { return p->db && p->db->selected ? p->db->keep : 1.f; }
const uint8_t *cdb_dropback_mask(const cdb_param *p) { return p->db && p->db->selected ? p->db->dropped : NULL; }
int cdb_dropback_mask_channels(const cdb_param *p) { return p->db ? p->db->mask_channels : 0; }

int cdb_dropback_tensor_stats(const cdb_param *p, dropback_tensor_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!p->db) return 0;
    out->takes_part = p->db->takes_part;
    out->mask_channels = p->db->drop_count ? p->db->mask_channels : 0;
    out->channel_rate = p->db->channel_rate;
    out->draws = p->db->draws;
    out->selected = p->db->times_selected;
    out->kept_sum = p->db->kept_sum;
    out->drop_count = p->db->drop_count;
    return p->db->drop_count != NULL;
}

const uint8_t *cdb_dropback_dropped_runs(const dropback_config *cfg, const cdb_param *p, size_t *run, int *period)
{
    if (!cdb_dropback_selected(p) || p->db->keep >= 1.f || (size_t)p->rows * p->channels * p->inner != p->size)
        return NULL;
    int out = cfg->axis == DROPBACK_AXIS_OUT;
    *run = out ? (size_t)p->channels * p->inner : (size_t)p->inner;
    *period = out ? p->rows : p->channels;
    return p->db->dropped;
}

void cdb_dropback_config_defaults(dropback_config *cfg)
{
    cfg->enabled = 0;
    cfg->layer_rate = 0.3f;
    cfg->layer_rate_init = 0.03f;
    cfg->milestones[0] = 0.3f;
    cfg->milestones[1] = 0.6f;
    cfg->channel_rate = 0.3f;
    cfg->skip = 3;
    cfg->policy = DROPBACK_POLICY_BERNOULLI;
    cfg->mode = DROPBACK_MODE_GRAD;
    cfg->axis = DROPBACK_AXIS_IN;
    cfg->skip_compute = 0;
}

float cdb_dropback_layer_rate(const dropback_config *cfg, int step, int max_batches)
{
    /* The rate changes at the first step past each milestone: with
     * max_batches 3000 and milestone 0.3, steps 0..899 run at the initial
     * rate and step 900 (the 901st) at the next. The small tolerance keeps
     * 0.3f * 3000 = 900.00004 from moving the switch by one step. */
    int first = (int)ceil((double)cfg->milestones[0] * max_batches - 1e-4);
    int second = (int)ceil((double)cfg->milestones[1] * max_batches - 1e-4);
    if (step < first) return cfg->layer_rate_init;
    if (step < second) return cfg->layer_rate / 2;
    return cfg->layer_rate;
}

int cdb_dropback_resolve(const dropback_config *cfg, cdb_param **params, int n)
{
    int eligible_seen = 0;
    for (int i = 0; i < n; i++) {
        cdb_param *p = params[i];
        if (!p->eligible || !p->db) continue;
        p->db->takes_part = 0;
        p->db->selected = 0;
        p->db->keep = 1;
        int in_skipped_prefix = eligible_seen < cfg->skip;
        eligible_seen++;
        if (p->db->override == 0) continue;
        if (p->db->override == 1)
            p->db->takes_part = 1;
        else
            p->db->takes_part = cfg->enabled && !in_skipped_prefix;
        if (p->db->channel_rate < 0) p->db->channel_rate = cfg->channel_rate;
        p->db->mask_channels = cfg->axis == DROPBACK_AXIS_OUT ? p->rows : p->channels;
        free(p->db->dropped);
        free(p->db->drop_count);
        p->db->dropped = cdb_xcalloc((size_t)p->db->mask_channels, 1);
        p->db->drop_count = cdb_xcalloc((size_t)p->db->mask_channels, sizeof(uint32_t));
        if (!p->db->dropped || !p->db->drop_count) return -1;
        p->db->draws = p->db->times_selected = 0;
        p->db->kept_sum = 0;
    }
    return 0;
}

static void draw_channels(cdb_param *p, cdb_rng *rng)
{
    int kept = 0;
    for (int c = 0; c < p->db->mask_channels; c++) {
        p->db->dropped[c] = cdb_rng_uniform(rng) < p->db->channel_rate;
        kept += !p->db->dropped[c];
    }
    if (kept == 0) { /* the reference drops nothing rather than everything */
        memset(p->db->dropped, 0, (size_t)p->db->mask_channels);
        kept = p->db->mask_channels;
    }
    p->db->selected = 1;
    p->db->keep = (float)kept / (float)p->db->mask_channels;
    p->db->times_selected++;
    p->db->kept_sum += p->db->keep;
    for (int c = 0; c < p->db->mask_channels; c++) p->db->drop_count[c] += p->db->dropped[c];
}

int cdb_dropback_draw(const dropback_config *cfg, cdb_param **params, int n, uint64_t seed, int step,
                  int max_batches, dropback_stats *stats)
{
    cdb_rng rng = cdb_rng_stream(seed, RNG_STREAM_DROPBACK, (uint64_t)step);
    float r = cdb_dropback_layer_rate(cfg, step, max_batches);
    int candidates = 0;
    for (int i = 0; i < n; i++) {
        if (!params[i]->db) continue;
        params[i]->db->selected = 0;
        params[i]->db->keep = 1;
        candidates += params[i]->db->takes_part;
        params[i]->db->draws += params[i]->db->takes_part;
    }
    int selected = 0;
    if (cfg->policy == DROPBACK_POLICY_SINGLE) {
        if (candidates > 0 && cdb_rng_uniform(&rng) < r) {
            int pick = cdb_rng_int(&rng, candidates);
            for (int i = 0; i < n; i++) {
                if (!cdb_dropback_takes_part(params[i])) continue;
                if (pick-- == 0) {
                    draw_channels(params[i], &rng);
                    selected = 1;
                    break;
                }
            }
        }
    } else {
        for (int i = 0; i < n; i++) {
            if (!cdb_dropback_takes_part(params[i])) continue;
            if (cdb_rng_uniform(&rng) < r) {
                draw_channels(params[i], &rng);
                selected++;
            }
        }
    }
    if (stats) {
        stats->steps++;
        stats->expected_selected += cfg->policy == DROPBACK_POLICY_SINGLE ? (candidates > 0 ? r : 0) : r * candidates;
        stats->selected += selected;
        for (int i = 0; i < n; i++)
            if (cdb_dropback_selected(params[i])) stats->dropped_fraction += 1.0 - params[i]->db->keep;
    }
    return selected;
}

static void mask_gradient(const cdb_param *p, dropback_axis axis)
{
    if (!cdb_dropback_selected(p)) return;
    float keep = p->db->keep;
    float *g = p->grad;
    size_t slice = (size_t)p->inner;
    for (int row = 0; row < p->rows; row++) {
        for (int c = 0; c < p->channels; c++) {
            float *s = g + ((size_t)row * p->channels + c) * slice;
            int dropped = axis == DROPBACK_AXIS_OUT ? p->db->dropped[row] : p->db->dropped[c];
            for (size_t k = 0; k < slice; k++) s[k] = dropback_masked(s[k], dropped, keep);
        }
    }
}

int cdb_dropback_read_net_keys(cfg_reader *r, dropback_config *d)
{
    cdb_dropback_config_defaults(d);
    d->enabled = cdb_cfg_int(r, "channel_dropback", 0, 0, 1);
    d->layer_rate = cdb_cfg_float(r, "dropback_layer_rate", d->layer_rate, 0.f, 1.f);
    d->layer_rate_init = cdb_cfg_float(r, "dropback_layer_rate_init", d->layer_rate_init, 0.f, 1.f);
    if (cdb_cfg_has(r, "dropback_milestones")) {
        float m[2];
        int n = cdb_cfg_float_list(r, "dropback_milestones", m, 2);
        if (!r->failed && (n != 2 || m[0] < 0 || m[1] > 1 || m[0] > m[1])) {
            cdb_cfg_fail(r, "dropback_milestones", "expected two fractions 0 <= a <= b <= 1, e.g. 0.3,0.6");
            return -1;
        }
        if (n == 2) memcpy(d->milestones, m, sizeof(m));
    }
    d->channel_rate = cdb_cfg_float(r, "dropback_channel_rate", d->channel_rate, 0.f, 1.f);
    d->skip = cdb_cfg_int(r, "dropback_skip", d->skip, 0, 1 << 20);
    static const char *const policies[] = {"bernoulli", "single", NULL};
    static const char *const modes[] = {"grad", "strict", NULL};
    static const char *const axes[] = {"in", "out", NULL};
    d->policy = (dropback_policy)cdb_cfg_choice(r, "dropback_policy", policies, d->policy);
    d->mode = (dropback_mode)cdb_cfg_choice(r, "dropback_mode", modes, d->mode);
    d->axis = (dropback_axis)cdb_cfg_choice(r, "dropback_axis", axes, d->axis);
    d->skip_compute = cdb_cfg_int(r, "dropback_skip_compute", d->skip_compute, 0, 1);
    return r->failed ? -1 : 0;
}

void cdb_dropback_read_layer_keys(cfg_reader *r, cdb_param *weights)
{
    int override = cdb_cfg_int(r, "channel_dropback", -1, 0, 1);
    cdb_dropback_configure(weights, override, cdb_cfg_float(r, "dropback_channel_rate", -1.f, 0.f, 1.f));
}

/* Compute skipping: whether the weight-gradient product of p may leave out
 * its dropped channels this step. */
static int skips(const dropback_config *cfg, const cdb_param *p)
{
    return cfg->skip_compute && cdb_dropback_selected(p) && p->db->keep < 1.f;
}

void cdb_dropback_skip_lists(const dropback_config *cfg, const cdb_param *p, const uint8_t **in_channels,
                         const uint8_t **rows)
{
    int skip = skips(cfg, p);
    *in_channels = skip && cfg->axis == DROPBACK_AXIS_IN ? p->db->dropped : NULL;
    *rows = skip && cfg->axis == DROPBACK_AXIS_OUT ? p->db->dropped : NULL;
}

static float *skip_scratch(cdb_network *net, size_t floats)
{
    if (floats > net->skip_scratch_floats) {
        free(net->skip_scratch);
        net->skip_scratch = cdb_xmalloc(floats * sizeof(float));
        net->skip_scratch_floats = net->skip_scratch ? floats : 0;
        if (!net->skip_scratch) net->pass_failed = 1; /* the step fails; cdb_trainer_step reports it */
    }
    return net->skip_scratch;
}

/* Indices of the kept entries of the first n (channel) entries of dropped,
 * each expanded to `inner` consecutive indices. */
static int kept_indices(const uint8_t *dropped, int n, int inner, int *out)
{
    int count = 0;
    for (int c = 0; c < n; c++)
        if (!dropped[c])
            for (int k = 0; k < inner; k++) out[count++] = c * inner + k;
    return count;
}

void cdb_dropback_weight_grad(cdb_network *net, const cdb_param *p, int row_base, int trans_a, int trans_b, int M, int N, int K,
                      const float *A, int lda, const float *B, int ldb, float *C, int ldc)
{
    /* The fixed-order GEMM (gemm.h): a kept channel's gradient has the same
     * bits whether or not the dropped ones are computed beside it. */
    if (!skips(&net->dropback, p)) {
        float *work = skip_scratch(net, cdb_gemm_fixed_workspace(M, N));
        if (work) cdb_gemm_fixed(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, work);
        return;
    }
    size_t work = cdb_gemm_fixed_workspace(M, N);
    if (net->dropback.axis == DROPBACK_AXIS_IN) {
        /* Kept columns of C; op(B) loses the matching columns. */
        float *scratch = skip_scratch(net, work + (size_t)K * N + (size_t)M * N + (size_t)N);
        if (!scratch) return;
        float *Bk = scratch + work, *Ck = Bk + (size_t)K * N;
        int *cols = (int *)(Ck + (size_t)M * N);
        int n = kept_indices(p->db->dropped, p->channels, p->inner, cols);
        if (trans_b)
            for (int j = 0; j < n; j++) memcpy(Bk + (size_t)j * K, B + (size_t)cols[j] * ldb, (size_t)K * sizeof(float));
        else
            for (int k = 0; k < K; k++)
                for (int j = 0; j < n; j++) Bk[(size_t)k * n + j] = B[(size_t)k * ldb + cols[j]];
        for (int i = 0; i < M; i++)
            for (int j = 0; j < n; j++) Ck[(size_t)i * n + j] = C[(size_t)i * ldc + cols[j]];
        cdb_gemm_fixed(trans_a, trans_b, M, n, K, A, lda, Bk, trans_b ? K : n, Ck, n, scratch);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < n; j++) C[(size_t)i * ldc + cols[j]] = Ck[(size_t)i * n + j];
    } else {
        /* Kept rows of C; op(A) loses the matching rows. */
        float *scratch = skip_scratch(net, work + (size_t)K * M + (size_t)M * N + (size_t)M);
        if (!scratch) return;
        float *Ak = scratch + work, *Ck = Ak + (size_t)K * M;
        int *rows = (int *)(Ck + (size_t)M * N);
        int m = kept_indices(p->db->dropped + row_base, M, 1, rows);
        if (trans_a)
            for (int k = 0; k < K; k++)
                for (int i = 0; i < m; i++) Ak[(size_t)k * m + i] = A[(size_t)k * lda + rows[i]];
        else
            for (int i = 0; i < m; i++) memcpy(Ak + (size_t)i * K, A + (size_t)rows[i] * lda, (size_t)K * sizeof(float));
        for (int i = 0; i < m; i++) memcpy(Ck + (size_t)i * N, C + (size_t)rows[i] * ldc, (size_t)N * sizeof(float));
        cdb_gemm_fixed(trans_a, trans_b, m, N, K, Ak, trans_a ? m : K, B, ldb, Ck, N, scratch);
        for (int i = 0; i < m; i++) memcpy(C + (size_t)rows[i] * ldc, Ck + (size_t)i * N, (size_t)N * sizeof(float));
    }
}

static int any_takes_part(const cdb_network *net)
{
    for (int i = 0; i < net->nparams; i++)
        if (cdb_dropback_takes_part(net->params[i])) return 1;
    return 0;
}

int cdb_dropback_begin_step(cdb_network *net, int step, int max_batches, dropback_stats *stats)
{
    if (!any_takes_part(net)) return 0;
    return cdb_dropback_draw(&net->dropback, net->params, net->nparams, net->seed, step, max_batches, stats);
}

void cdb_dropback_apply_masks(cdb_network *net)
{
    for (int i = 0; i < net->nparams; i++) {
        cdb_param *p = net->params[i];
        if (!cdb_dropback_selected(p)) continue;
#ifdef GPU
        if (net->gpu) {
            cdb_dropback_mask_gradient_gpu(net, p);
            continue;
        }
#endif
        mask_gradient(p, net->dropback.axis);
    }
}

const uint8_t *cdb_dropback_frozen(const dropback_config *cfg, const cdb_param *p)
{
    return cfg->mode == DROPBACK_MODE_STRICT ? cdb_dropback_mask(p) : NULL;
}

void cdb_dropback_disable(cdb_network *net)
{
    net->dropback.enabled = 0;
    for (int i = 0; i < net->nparams; i++) {
        cdb_param *p = net->params[i];
        if (!p->db) continue;
        p->db->takes_part = 0;
        p->db->selected = 0;
        p->db->keep = 1;
    }
}
