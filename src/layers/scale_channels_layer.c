/* [scale_channels] from=-N: squeeze-and-excitation's scaling (AlexeyAB's
 * layer). The input is one value per channel (c x 1 x 1, e.g. [avgpool]
 * then 1x1 convolutions, the last with activation=logistic); the output is
 * layer N's output with each channel multiplied by its value:
 *   out[b, c, s] = from[b, c, s] * in[b, c]. */
#include <stdlib.h>

#include "layers.h"
#include "scale_channels_layer.h"

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    (void)train;
    const scale_channels_priv *p = l->priv;
    const cdb_layer *src = &net->layers[p->from];
    int S = l->out_h * l->out_w;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < l->batch; b++)
        for (int c = 0; c < l->out_c; c++) {
            float scale = l->input[(size_t)b * l->inputs + c];
            const float *x = src->output + (size_t)b * src->outputs + (size_t)c * S;
            float *y = l->output + (size_t)b * l->outputs + (size_t)c * S;
            for (int i = 0; i < S; i++) y[i] = x[i] * scale;
        }
}

static void backward(cdb_layer *l, cdb_network *net)
{
    const scale_channels_priv *p = l->priv;
    cdb_layer *src = &net->layers[p->from];
    int S = l->out_h * l->out_w;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < l->batch; b++)
        for (int c = 0; c < l->out_c; c++) {
            size_t at = (size_t)b * l->outputs + (size_t)c * S;
            float scale = l->input[(size_t)b * l->inputs + c], ds = 0;
            const float *d = l->delta + at, *x = src->output + at;
            float *dx = src->delta + at;
            for (int i = 0; i < S; i++) {
                dx[i] += d[i] * scale;
                ds += d[i] * x[i];
            }
            if (l->input_delta) l->input_delta[(size_t)b * l->inputs + c] += ds;
        }
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    scale_channels_priv *p = cdb_layer_priv(l, sizeof(scale_channels_priv), NULL);
    if (!p) return -1;
    p->from = cdb_layer_read_from(r, l, "the layer whose channels are scaled");
    if (p->from < 0 || cdb_cfg_check_unused(r)) return -1;
    const cdb_layer *src = &net->layers[p->from];
    if (l->h != 1 || l->w != 1 || l->c != src->out_c || src->out_tokens) {
        cdb_cfg_fail(r, "from", "the input (%dx%dx%d) must be one value per channel of layer %d (%d channels, %dx%d)", l->c,
                 l->h, l->w, p->from, src->out_c, src->out_h, src->out_w);
        return -1;
    }
    l->out_c = src->out_c;
    l->out_h = src->out_h;
    l->out_w = src->out_w;
    if (cdb_layer_alloc_output(l, r)) return -1;
    snprintf(l->description, sizeof(l->description), "layer %d by channel", p->from);
    return 0;
}

LAYER_OPS(scale_channels, NULL, LAYER_TAKES_IMAGE, 0);
