#include "dropback.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "utils.h"

void dropback_config_defaults(dropback_config *cfg)
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

float dropback_layer_rate(const dropback_config *cfg, int step, int max_batches)
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

void dropback_resolve(const dropback_config *cfg, cdb_param **params, int n)
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
        p->dropped = xcalloc((size_t)p->mask_channels, 1);
    }
}

static void draw_channels(cdb_param *p, cdb_rng *rng)
{
    int kept = 0;
    for (int c = 0; c < p->mask_channels; c++) {
        p->dropped[c] = rng_uniform(rng) < p->channel_rate;
        kept += !p->dropped[c];
    }
    if (kept == 0) { /* the reference drops nothing rather than everything */
        memset(p->dropped, 0, (size_t)p->mask_channels);
        kept = p->mask_channels;
    }
    p->selected = 1;
    p->keep = (float)kept / (float)p->mask_channels;
}

int dropback_draw(const dropback_config *cfg, cdb_param **params, int n, uint64_t seed, int step,
                  int max_batches, dropback_stats *stats)
{
    cdb_rng rng = rng_stream(seed, RNG_STREAM_DROPBACK, (uint64_t)step);
    float r = dropback_layer_rate(cfg, step, max_batches);
    int candidates = 0;
    for (int i = 0; i < n; i++) {
        params[i]->selected = 0;
        params[i]->keep = 1;
        candidates += params[i]->dropback;
    }
    int selected = 0;
    if (cfg->policy == DROPBACK_POLICY_SINGLE) {
        if (candidates > 0 && rng_uniform(&rng) < r) {
            int pick = rng_int(&rng, candidates);
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
            if (rng_uniform(&rng) < r) {
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

void dropback_mask_gradient(const cdb_param *p, dropback_axis axis)
{
    if (!p->selected) return;
    float keep = p->keep;
    float *g = p->grad;
    size_t slice = (size_t)p->inner;
    for (int row = 0; row < p->rows; row++) {
        for (int c = 0; c < p->channels; c++) {
            float *s = g + ((size_t)row * p->channels + c) * slice;
            int dropped = axis == DROPBACK_AXIS_OUT ? p->dropped[row] : p->dropped[c];
            if (dropped)
                memset(s, 0, slice * sizeof(float));
            else
                for (size_t k = 0; k < slice; k++) s[k] /= keep;
        }
    }
}

int dropback_read_net_keys(cfg_reader *r, dropback_config *d)
{
    dropback_config_defaults(d);
    d->enabled = cfg_int(r, "channel_dropback", 0, 0, 1);
    d->layer_rate = cfg_float(r, "dropback_layer_rate", d->layer_rate, 0.f, 1.f);
    d->layer_rate_init = cfg_float(r, "dropback_layer_rate_init", d->layer_rate_init, 0.f, 1.f);
    if (cfg_has(r, "dropback_milestones")) {
        float m[2];
        int n = cfg_float_list(r, "dropback_milestones", m, 2);
        if (!r->failed && (n != 2 || m[0] < 0 || m[1] > 1 || m[0] > m[1])) {
            cfg_fail(r, "dropback_milestones", "expected two fractions 0 <= a <= b <= 1, e.g. 0.3,0.6");
            return -1;
        }
        if (n == 2) memcpy(d->milestones, m, sizeof(m));
    }
    d->channel_rate = cfg_float(r, "dropback_channel_rate", d->channel_rate, 0.f, 1.f);
    d->skip = cfg_int(r, "dropback_skip", d->skip, 0, 1 << 20);
    static const char *const policies[] = {"bernoulli", "single", NULL};
    static const char *const modes[] = {"grad", "strict", NULL};
    static const char *const axes[] = {"in", "out", NULL};
    d->policy = (dropback_policy)cfg_choice(r, "dropback_policy", policies, d->policy);
    d->mode = (dropback_mode)cfg_choice(r, "dropback_mode", modes, d->mode);
    d->axis = (dropback_axis)cfg_choice(r, "dropback_axis", axes, d->axis);
    d->skip_compute = cfg_int(r, "dropback_skip_compute", d->skip_compute, 0, 1);
    return r->failed ? -1 : 0;
}

void dropback_read_layer_keys(cfg_reader *r, cdb_param *weights)
{
    weights->dropback_override = cfg_int(r, "channel_dropback", -1, 0, 1);
    weights->channel_rate = cfg_float(r, "dropback_channel_rate", -1.f, 0.f, 1.f);
}
