/* [local_avgpool]: the mean over size x size windows, with [maxpool]'s
 * Darknet geometry: out = (in + padding - size) / stride + 1, windows offset
 * by -padding/2; stride defaults to 1, size to stride and padding to
 * size - 1 (AlexeyAB's defaults). A window that reaches past the input
 * averages the pixels it covers (PyTorch's count_include_pad=False; with
 * size = stride on an even input, as DenseNet's 2x2 transitions, no window
 * does). input (batch, c, h, w). */
#include <stdlib.h>

#include "layers.h"
#include "local_avgpool_layer.h"

/* The window of output (y, x) clipped to the input: rows [*ya, *yb), columns [*xa, *xb). */
static void window(const cdb_layer *l, const local_avgpool_priv *p, int y, int x, int *ya, int *yb, int *xa, int *xb)
{
    int off = -p->padding / 2, y0 = y * p->stride + off, x0 = x * p->stride + off;
    *ya = y0 < 0 ? 0 : y0;
    *yb = y0 + p->size < l->h ? y0 + p->size : l->h;
    *xa = x0 < 0 ? 0 : x0;
    *xb = x0 + p->size < l->w ? x0 + p->size : l->w;
}

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    (void)net;
    (void)train;
    const local_avgpool_priv *p = l->priv;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < l->batch; b++)
        for (int c = 0; c < l->c; c++) {
            const float *in = l->input + (size_t)b * l->inputs + (size_t)c * l->h * l->w;
            float *out = l->output + (size_t)b * l->outputs + (size_t)c * l->out_h * l->out_w;
            for (int y = 0; y < l->out_h; y++)
                for (int x = 0; x < l->out_w; x++) {
                    int ya, yb, xa, xb;
                    window(l, p, y, x, &ya, &yb, &xa, &xb);
                    float s = 0;
                    for (int iy = ya; iy < yb; iy++)
                        for (int ix = xa; ix < xb; ix++) s += in[iy * l->w + ix];
                    int n = (yb - ya) * (xb - xa);
                    out[y * l->out_w + x] = n > 0 ? s / n : 0;
                }
        }
}

static void backward(cdb_layer *l, cdb_network *net)
{
    (void)net;
    if (!l->input_delta) return;
    const local_avgpool_priv *p = l->priv;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < l->batch; b++)
        for (int c = 0; c < l->c; c++) {
            float *din = l->input_delta + (size_t)b * l->inputs + (size_t)c * l->h * l->w;
            const float *d = l->delta + (size_t)b * l->outputs + (size_t)c * l->out_h * l->out_w;
            for (int y = 0; y < l->out_h; y++)
                for (int x = 0; x < l->out_w; x++) {
                    int ya, yb, xa, xb;
                    window(l, p, y, x, &ya, &yb, &xa, &xb);
                    int n = (yb - ya) * (xb - xa);
                    if (n <= 0) continue;
                    float g = d[y * l->out_w + x] / n;
                    for (int iy = ya; iy < yb; iy++)
                        for (int ix = xa; ix < xb; ix++) din[iy * l->w + ix] += g;
                }
        }
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    (void)net;
    local_avgpool_priv *p = cdb_layer_priv(l, sizeof(local_avgpool_priv), NULL);
    if (!p) return -1;
    p->stride = cdb_cfg_int(r, "stride", 1, 1, 1024);
    p->size = cdb_cfg_int(r, "size", p->stride, 1, 1024);
    p->padding = cdb_cfg_int(r, "padding", p->size - 1, 0, 1024);
    if (cdb_cfg_check_unused(r)) return -1;
    l->out_c = l->c;
    l->out_h = (l->h + p->padding - p->size) / p->stride + 1;
    l->out_w = (l->w + p->padding - p->size) / p->stride + 1;
    if (l->h + p->padding < p->size || l->w + p->padding < p->size) {
        cdb_cfg_fail(r, "size", "window %d does not fit the %dx%d input (padding %d)", p->size, l->h, l->w, p->padding);
        return -1;
    }
    if (cdb_layer_alloc_output(l, r)) return -1;
    snprintf(l->description, sizeof(l->description), "avg %dx%d/%d", p->size, p->size, p->stride);
    return 0;
}

LAYER_OPS(local_avgpool, NULL, LAYER_TAKES_IMAGE, 0);
