/* [maxpool]: max over size x size windows with Darknet's geometry:
 * out = (in + padding - size) / stride + 1, windows offset by -padding/2,
 * padding defaults to size - 1. input (batch, c, h, w). */
#include <float.h>
#include <stdlib.h>

#include "layers.h"
#include "maxpool_layer.h"

/* The common 2x2/2 window on an even-sized input never clips: a fixed
 * four-way comparison, in the same order and with the same ties and NaN rule
 * as the general loop below. */
static void forward_2x2(cdb_layer *l, maxpool_priv *p)
{
    int W = l->w, OW = l->out_w, OH = l->out_h;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < l->batch; b++) {
        for (int c = 0; c < l->c; c++) {
            int plane = c * l->h * W;
            const float *in = l->input + (size_t)b * l->inputs + plane;
            size_t o0 = (size_t)b * l->outputs + (size_t)c * OH * OW;
            float *restrict out = l->output + o0;
            int *restrict arg = p->argmax + o0;
            for (int y = 0; y < OH; y++) {
                const float *r0 = in + 2 * y * W, *r1 = r0 + W;
                int i0 = plane + 2 * y * W;
                for (int x = 0; x < OW; x++) {
                    float v[4] = {r0[2 * x], r0[2 * x + 1], r1[2 * x], r1[2 * x + 1]};
                    int idx[4] = {i0 + 2 * x, i0 + 2 * x + 1, i0 + W + 2 * x, i0 + W + 2 * x + 1};
                    float best = -FLT_MAX;
                    int best_i = -1;
                    for (int k = 0; k < 4; k++) {
                        int better = v[k] > best;
                        best = better ? v[k] : best;
                        best_i = better ? idx[k] : best_i;
                    }
                    out[y * OW + x] = best_i >= 0 ? best : 0;
                    arg[y * OW + x] = best_i;
                }
            }
        }
    }
}

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    (void)net;
    (void)train;
    maxpool_priv *p = l->priv;
    int off = -p->padding / 2;
    if (p->size == 2 && p->stride == 2 && off == 0 && l->h % 2 == 0 && l->w % 2 == 0) {
        forward_2x2(l, p);
        return;
    }
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < l->batch; b++) {
        for (int c = 0; c < l->c; c++) {
            const float *in = l->input + (size_t)b * l->inputs + (size_t)c * l->h * l->w;
            for (int y = 0; y < l->out_h; y++)
                for (int x = 0; x < l->out_w; x++) {
                    float best = -FLT_MAX;
                    int best_i = -1;
                    /* the window clipped to the input */
                    int y0 = y * p->stride + off, x0 = x * p->stride + off;
                    int ya = y0 < 0 ? 0 : y0, yb = y0 + p->size < l->h ? y0 + p->size : l->h;
                    int xa = x0 < 0 ? 0 : x0, xb = x0 + p->size < l->w ? x0 + p->size : l->w;
                    for (int iy = ya; iy < yb; iy++)
                        for (int ix = xa; ix < xb; ix++) {
                            /* branch-free: random data defeats the predictor */
                            float v = in[iy * l->w + ix];
                            int better = v > best;
                            best = better ? v : best;
                            best_i = better ? iy * l->w + ix : best_i;
                        }
                    size_t o = (size_t)b * l->outputs + ((size_t)c * l->out_h + y) * l->out_w + x;
                    l->output[o] = best_i >= 0 ? best : 0;
                    p->argmax[o] = best_i < 0 ? -1 : (int)((size_t)c * l->h * l->w + best_i);
                }
        }
    }
}

static void backward(cdb_layer *l, cdb_network *net)
{
    (void)net;
    maxpool_priv *p = l->priv;
    if (!l->input_delta) return;
    for (int b = 0; b < l->batch; b++)
        for (int i = 0; i < l->outputs; i++) {
            size_t o = (size_t)b * l->outputs + i;
            if (p->argmax[o] >= 0) l->input_delta[(size_t)b * l->inputs + p->argmax[o]] += l->delta[o];
        }
}

static void destroy(cdb_layer *l)
{
    maxpool_priv *p = l->priv;
    free(p->argmax);
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    (void)net;
    maxpool_priv *p = cdb_layer_priv(l, sizeof(maxpool_priv), destroy);
    if (!p) return -1;
    /* Darknet's defaults: stride 1, size = stride. */
    p->stride = cdb_cfg_int(r, "stride", 1, 1, 1024);
    p->size = cdb_cfg_int(r, "size", p->stride, 1, 1024);
    p->padding = cdb_cfg_int(r, "padding", p->size - 1, 0, 1024);
    if (cdb_cfg_check_unused(r)) return -1;
    l->out_c = l->c;
    l->out_h = (l->h + p->padding - p->size) / p->stride + 1;
    l->out_w = (l->w + p->padding - p->size) / p->stride + 1;
    if (l->out_h < 1 || l->out_w < 1) {
        cdb_cfg_fail(r, "size", "window %d does not fit the %dx%d input", p->size, l->h, l->w);
        return -1;
    }
    if (cdb_layer_alloc_output(l, r)) return -1;
    p->argmax = cdb_xcalloc((size_t)l->batch * l->outputs, sizeof(int));
    snprintf(l->description, sizeof(l->description), "%dx%d/%d", p->size, p->size, p->stride);
    return 0;
}

LAYER_OPS(maxpool, "max", LAYER_TAKES_IMAGE, 0);
