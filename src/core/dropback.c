/* ChannelDropBack (docs/dropback.md, the spec): configuration, which
 * tensors take part, the per-step draw, the weight-gradient product with
 * compute skipping, the mask and strict mode's frozen channels. */
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
        p->dropback = 0;
        p->selected = 0;
        p->keep = 1;
        if (!p->eligible) continue;
        int in_skipped_prefix = eligible_seen < cfg->skip;
        eligible_seen++;
        if (p->dropback_override == 0) continue;
        if (p->dropback_override == 1)
            p->dropback = 1;
        else
            p->dropback = cfg->enabled && !in_skipped_prefix;
        if (p->channel_rate < 0) p->channel_rate = cfg->channel_rate;
        p->mask_channels = cfg->axis == DROPBACK_AXIS_OUT ? p->rows : p->channels;
        free(p->dropped);
        free(p->drop_count);
        p->dropped = cdb_xcalloc((size_t)p->mask_channels, 1);
        p->drop_count = cdb_xcalloc((size_t)p->mask_channels, sizeof(uint32_t));
        if (!p->dropped || !p->drop_count) return -1;
        p->draws = p->times_selected = 0;
        p->kept_sum = 0;
    }
    return 0;
}

static void draw_channels(cdb_param *p, cdb_rng *rng)
{
    int kept = 0;
    for (int c = 0; c < p->mask_channels; c++) {
        p->dropped[c] = cdb_rng_uniform(rng) < p->channel_rate;
        kept += !p->dropped[c];
    }
    if (kept == 0) { /* the reference drops nothing rather than everything */
        memset(p->dropped, 0, (size_t)p->mask_channels);
        kept = p->mask_channels;
    }
    p->selected = 1;
    p->keep = (float)kept / (float)p->mask_channels;
    p->times_selected++;
    p->kept_sum += p->keep;
    for (int c = 0; c < p->mask_channels; c++) p->drop_count[c] += p->dropped[c];
}

int cdb_dropback_draw(const dropback_config *cfg, cdb_param **params, int n, uint64_t seed, int step,
                  int max_batches, dropback_stats *stats)
{
    cdb_rng rng = cdb_rng_stream(seed, RNG_STREAM_DROPBACK, (uint64_t)step);
    float r = cdb_dropback_layer_rate(cfg, step, max_batches);
    int candidates = 0;
    for (int i = 0; i < n; i++) {
        params[i]->selected = 0;
        params[i]->keep = 1;
        candidates += params[i]->dropback;
        params[i]->draws += params[i]->dropback;
    }
    int selected = 0;
    if (cfg->policy == DROPBACK_POLICY_SINGLE) {
        if (candidates > 0 && cdb_rng_uniform(&rng) < r) {
            int pick = cdb_rng_int(&rng, candidates);
            for (int i = 0; i < n; i++) {
                if (!params[i]->dropback) continue;
                if (pick-- == 0) {
                    draw_channels(params[i], &rng);
                    selected = 1;
                    break;
                }
            }
        }
    } else {
        for (int i = 0; i < n; i++) {
            if (!params[i]->dropback) continue;
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
            if (params[i]->selected) stats->dropped_fraction += 1.0 - params[i]->keep;
    }
    return selected;
}

static void mask_gradient(const cdb_param *p, dropback_axis axis)
{
    if (!p->selected) return;
    float keep = p->keep;
    float *g = p->grad;
    size_t slice = (size_t)p->inner;
    for (int row = 0; row < p->rows; row++) {
        for (int c = 0; c < p->channels; c++) {
            float *s = g + ((size_t)row * p->channels + c) * slice;
            int dropped = axis == DROPBACK_AXIS_OUT ? p->dropped[row] : p->dropped[c];
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
    weights->dropback_override = cdb_cfg_int(r, "channel_dropback", -1, 0, 1);
    weights->channel_rate = cdb_cfg_float(r, "dropback_channel_rate", -1.f, 0.f, 1.f);
}

/* Compute skipping: whether the weight-gradient product of p may leave out
 * its dropped channels this step. */
static int skips(const dropback_config *cfg, const cdb_param *p)
{
    return cfg->skip_compute && p->selected && p->keep < 1.f;
}

void cdb_dropback_skip_lists(const dropback_config *cfg, const cdb_param *p, const uint8_t **in_channels,
                         const uint8_t **rows)
{
    int skip = skips(cfg, p);
    *in_channels = skip && cfg->axis == DROPBACK_AXIS_IN ? p->dropped : NULL;
    *rows = skip && cfg->axis == DROPBACK_AXIS_OUT ? p->dropped : NULL;
}

static float *skip_scratch(cdb_network *net, size_t floats)
{
    if (floats > net->skip_scratch_floats) {
        free(net->skip_scratch);
        net->skip_scratch = cdb_xmalloc(floats * sizeof(float));
        net->skip_scratch_floats = net->skip_scratch ? floats : 0;
        if (!net->skip_scratch) net->pass_failed = 1; /* the step fails; cdb_network_train_step reports it */
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
        int n = kept_indices(p->dropped, p->channels, p->inner, cols);
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
        int m = kept_indices(p->dropped + row_base, M, 1, rows);
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
        if (net->params[i]->dropback) return 1;
    return 0;
}

int cdb_dropback_begin_step(cdb_network *net)
{
    if (!any_takes_part(net)) return 0;
    return cdb_dropback_draw(&net->dropback, net->params, net->nparams, net->seed, net->step, net->train.max_batches,
                         &net->dropback_stats);
}

void cdb_dropback_apply_masks(cdb_network *net)
{
    for (int i = 0; i < net->nparams; i++) {
        cdb_param *p = net->params[i];
        if (!p->selected) continue;
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
    return cfg->mode == DROPBACK_MODE_STRICT && p->selected ? p->dropped : NULL;
}

void cdb_dropback_disable(cdb_network *net)
{
    net->dropback.enabled = 0;
    for (int i = 0; i < net->nparams; i++) {
        net->params[i]->dropback = 0;
        net->params[i]->selected = 0;
        net->params[i]->keep = 1;
    }
}

void cdb_dropback_print_config(const cdb_network *net, const char *off_reason, FILE *out)
{
    const dropback_config *db = &net->dropback;
    int tensors = 0;
    for (int i = 0; i < net->nparams; i++) tensors += net->params[i]->dropback;
    fprintf(out, "dropback: %s; layer rate %.3g -> %.3g -> %.3g at %.0f%%/%.0f%% of %d steps, channel rate %.3g, "
                 "skip %d, %d tensors take part, policy %s, mode %s, axis %s\n",
            db->enabled && net->nparams ? "on" : off_reason, db->layer_rate_init, db->layer_rate / 2, db->layer_rate,
            100 * db->milestones[0], 100 * db->milestones[1], net->train.max_batches, db->channel_rate, db->skip,
            tensors, db->policy == DROPBACK_POLICY_SINGLE ? "single" : "bernoulli",
            db->mode == DROPBACK_MODE_STRICT ? "strict" : "grad", db->axis == DROPBACK_AXIS_OUT ? "out" : "in");
}
