/* [shortcut]: residual sum of the previous layer and the layer named by
 * `from`, then the activation. Shapes may differ as Darknet allows: the
 * output has the previous layer's shape, and `from` is added over the
 * common channels, its map read every `stride` pixels when larger, added
 * to every `sample`-th pixel when smaller (pjreddie's shortcut_cpu). With drop_connect=P (stochastic
 * depth, EfficientNet's drop-connect) each image's previous-layer input, the
 * residual branch, is dropped with probability P in training and scaled by
 * 1/(1-P) otherwise; the factors come from the run's dropout stream for
 * (step, subdivision, layer). */
#include <stdlib.h>

#include "activations.h"
#include "layers.h"
#include "shortcut_layer.h"

int cdb_shortcut_draw(cdb_layer *l, cdb_network *net, int train)
{
    shortcut_priv *p = l->priv;
    int any = 0;
    if (!train || p->drop_connect == 0) {
        for (int b = 0; b < l->batch; b++) p->branch_scale[b] = 1.f;
        return 0;
    }
    cdb_rng rng = cdb_layer_pass_rng(l, net);
    for (int b = 0; b < l->batch; b++) {
        p->branch_scale[b] = cdb_rng_uniform(&rng) >= p->drop_connect ? 1.f / (1.f - p->drop_connect) : 0.f;
        any |= p->branch_scale[b] != 1.f;
    }
    return any;
}

/* The common region's sizes of a resampling shortcut. */
static void common(const cdb_layer *l, const shortcut_priv *p, int *mc, int *mh, int *mw)
{
    *mc = p->fc < l->out_c ? p->fc : l->out_c;
    *mh = p->fh < l->out_h ? p->fh : l->out_h;
    *mw = p->fw < l->out_w ? p->fw : l->out_w;
}

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    shortcut_priv *p = l->priv;
    const float *other = net->layers[p->from].output;
    float *z = p->act == ACT_LINEAR ? l->output : p->preact;
    size_t n = (size_t)l->batch * l->outputs;
    if (p->resample) {
        cdb_shortcut_draw(l, net, train);
        for (int b = 0; b < l->batch; b++) {
            size_t o = (size_t)b * l->outputs;
            for (int i = 0; i < l->outputs; i++) z[o + i] = l->input[o + i] * p->branch_scale[b];
        }
        int mc, mh, mw;
        common(l, p, &mc, &mh, &mw);
        for (int b = 0; b < l->batch; b++)
            for (int k = 0; k < mc; k++)
                for (int j = 0; j < mh; j++)
                    for (int i = 0; i < mw; i++) z[SHORTCUT_OUT_INDEX(l, p, b, k, j, i)] += other[SHORTCUT_FROM_INDEX(p, b, k, j, i)];
    } else if (cdb_shortcut_draw(l, net, train)) {
        for (int b = 0; b < l->batch; b++) {
            size_t o = (size_t)b * l->outputs;
            float s = p->branch_scale[b];
            for (int i = 0; i < l->outputs; i++) z[o + i] = l->input[o + i] * s + other[o + i];
        }
    } else {
        for (size_t i = 0; i < n; i++) z[i] = l->input[i] + other[i];
    }
    if (p->act != ACT_LINEAR) cdb_activate_array(p->act, z, l->output, n);
}

static void backward(cdb_layer *l, cdb_network *net)
{
    shortcut_priv *p = l->priv;
    size_t n = (size_t)l->batch * l->outputs;
    if (p->act != ACT_LINEAR) cdb_gradient_array(p->act, p->preact, l->delta, l->delta, n);
    float *other = net->layers[p->from].delta;
    if (p->resample) {
        int mc, mh, mw;
        common(l, p, &mc, &mh, &mw);
        for (int b = 0; b < l->batch; b++)
            for (int k = 0; k < mc; k++)
                for (int j = 0; j < mh; j++)
                    for (int i = 0; i < mw; i++)
                        other[SHORTCUT_FROM_INDEX(p, b, k, j, i)] += l->delta[SHORTCUT_OUT_INDEX(l, p, b, k, j, i)];
    } else {
        for (size_t i = 0; i < n; i++) other[i] += l->delta[i];
    }
    if (l->input_delta)
        for (int b = 0; b < l->batch; b++) {
            size_t o = (size_t)b * l->outputs;
            float s = p->branch_scale[b];
            for (int i = 0; i < l->outputs; i++) l->input_delta[o + i] += l->delta[o + i] * s;
        }
}

static void destroy(cdb_layer *l)
{
    shortcut_priv *p = l->priv;
    free(p->preact);
    free(p->branch_scale);
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    shortcut_priv *p = cdb_layer_priv(l, sizeof(shortcut_priv), destroy);
    if (!p) return -1;
    p->from = cdb_layer_read_from(r, l, "the layer to add");
    if (p->from < 0) return -1;
    p->act = cdb_layer_read_activation(r, ACT_LINEAR);
    p->drop_connect = cdb_cfg_float(r, "drop_connect", 0.f, 0.f, 0.99f);
    if (cdb_cfg_check_unused(r)) return -1;
    const cdb_layer *src = &net->layers[p->from];
    if (src->out_c != l->c || src->out_h != l->h || src->out_w != l->w || src->out_tokens != l->tokens) {
        /* Darknet's rule for shapes that differ: the common channels, the
         * larger map sampled at an integer stride. */
        int fh = src->out_h, fw = src->out_w, stride = 1, sample = 1, ok = !src->out_tokens && !l->tokens;
        if (ok && fw >= l->w) { /* `from` as large or larger: read every stride-th pixel */
            stride = fw / l->w;
            ok = fw == stride * l->w && fh == stride * l->h;
        } else if (ok) { /* smaller: added to every sample-th output pixel */
            sample = l->w / fw;
            ok = l->w == sample * fw && l->h == sample * fh;
        }
        if (!ok) {
            cdb_cfg_fail(r, "from",
                     "layer %d has shape %dx%dx%d but the previous layer has %dx%dx%d: the maps must be equal or one "
                     "an integer multiple of the other in both directions (Darknet's shortcut across shapes)",
                     p->from, src->out_c, src->out_h, src->out_w, l->c, l->h, l->w);
            return -1;
        }
        p->resample = 1;
        p->fc = src->out_c;
        p->fh = fh;
        p->fw = fw;
        p->stride = stride;
        p->sample = sample;
    }
    if (cdb_layer_alloc_same_shape(l, r)) return -1;
    if (p->act != ACT_LINEAR) p->preact = cdb_xcalloc((size_t)l->batch * l->outputs, sizeof(float));
    p->branch_scale = cdb_xcalloc((size_t)l->batch, sizeof(float));
    if (!p->branch_scale) return -1;
    for (int b = 0; b < l->batch; b++) p->branch_scale[b] = 1.f;
    if (p->drop_connect > 0)
        snprintf(l->description, sizeof(l->description), "from %d %s, drop_connect %.3g", p->from,
                 cdb_activation_name(p->act), p->drop_connect);
    else
        snprintf(l->description, sizeof(l->description), "from %d %s%s", p->from, cdb_activation_name(p->act),
                 p->resample ? ", common channels (Darknet)" : "");
    return 0;
}

LAYER_OPS(shortcut, NULL, LAYER_TAKES_ANY, 0);
