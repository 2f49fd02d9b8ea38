/* [crop]: Darknet's crop layer (pjreddie's classifier cfgs start with it):
 * in training a random crop_height x crop_width window of each image,
 * flipped at random with flip=1; in valid/predict the centre window,
 * unflipped; and, unless noadjust=1, the values mapped from [0, 1] to
 * [-1, 1] (x 2 - 1), as Darknet does. The windows come from the run's
 * dropout stream for (step, subdivision, layer), one per image (Darknet's
 * CPU code draws one per batch, its GPU code one per image). */
#include <stdlib.h>
#include <string.h>

#include "layers.h"

typedef struct {
    int flip, noadjust;
    int *dy, *dx, *flipped; /* (batch): this pass's window of each image */
} crop_priv;

static void draw(cdb_layer *l, cdb_network *net, int train)
{
    crop_priv *p = l->priv;
    cdb_rng rng = cdb_layer_pass_rng(l, net);
    for (int b = 0; b < l->batch; b++) {
        if (train) {
            p->dy[b] = cdb_rng_int(&rng, l->h - l->out_h + 1);
            p->dx[b] = cdb_rng_int(&rng, l->w - l->out_w + 1);
            p->flipped[b] = p->flip && cdb_rng_int(&rng, 2);
        } else {
            p->dy[b] = (l->h - l->out_h) / 2;
            p->dx[b] = (l->w - l->out_w) / 2;
            p->flipped[b] = 0;
        }
    }
}

/* The input index of output element (b, c, y, x). */
static size_t source(const cdb_layer *l, const crop_priv *p, int b, int c, int y, int x)
{
    int col = p->flipped[b] ? l->w - p->dx[b] - x - 1 : x + p->dx[b];
    return (((size_t)b * l->c + c) * l->h + y + p->dy[b]) * l->w + col;
}

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    crop_priv *p = l->priv;
    draw(l, net, train);
    float scale = p->noadjust ? 1.f : 2.f, shift = p->noadjust ? 0.f : -1.f;
    size_t o = 0;
    for (int b = 0; b < l->batch; b++)
        for (int c = 0; c < l->c; c++)
            for (int y = 0; y < l->out_h; y++)
                for (int x = 0; x < l->out_w; x++) l->output[o++] = l->input[source(l, p, b, c, y, x)] * scale + shift;
}

static void backward(cdb_layer *l, cdb_network *net)
{
    (void)net;
    crop_priv *p = l->priv;
    if (!l->input_delta) return;
    float scale = p->noadjust ? 1.f : 2.f;
    size_t o = 0;
    for (int b = 0; b < l->batch; b++)
        for (int c = 0; c < l->c; c++)
            for (int y = 0; y < l->out_h; y++)
                for (int x = 0; x < l->out_w; x++) l->input_delta[source(l, p, b, c, y, x)] += l->delta[o++] * scale;
}

static void destroy(cdb_layer *l)
{
    crop_priv *p = l->priv;
    free(p->dy);
    free(p->dx);
    free(p->flipped);
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    (void)net;
    crop_priv *p = cdb_layer_priv(l, sizeof(crop_priv), destroy);
    if (!p) return -1;
    int ch = cdb_cfg_int(r, "crop_height", 1, 1, 1 << 16), cw = cdb_cfg_int(r, "crop_width", 1, 1, 1 << 16);
    p->flip = cdb_cfg_int(r, "flip", 0, 0, 1);
    p->noadjust = cdb_cfg_int(r, "noadjust", 0, 0, 1);
    /* Darknet parses these here but its CPU crop ignores them: cdbnet takes
     * them only at their no-op values (the [net] keys do that work). */
    static const struct {
        const char *key;
        float off;
    } unused[] = {{"angle", 0.f}, {"saturation", 1.f}, {"exposure", 1.f}, {"shift", 0.f}};
    for (int i = 0; i < 4; i++)
        if (cdb_cfg_has(r, unused[i].key) && cdb_cfg_float(r, unused[i].key, unused[i].off, -1e6f, 1e6f) != unused[i].off) {
            cdb_cfg_fail(r, unused[i].key, "not taken on [crop] (Darknet's CPU crop ignores it)%s%s%s",
                     i == 3 ? "" : "; use [net] ", i == 3 ? "" : unused[i].key, i == 3 ? "" : "=");
            return -1;
        }
    if (cdb_cfg_check_unused(r)) return -1;
    if (ch > l->h || cw > l->w) {
        cdb_cfg_fail(r, "crop_height", "the window %dx%d is larger than the %dx%d input", ch, cw, l->h, l->w);
        return -1;
    }
    l->out_c = l->c;
    l->out_h = ch;
    l->out_w = cw;
    if (cdb_layer_alloc_output(l, r)) return -1;
    p->dy = cdb_xcalloc((size_t)l->batch, sizeof(int));
    p->dx = cdb_xcalloc((size_t)l->batch, sizeof(int));
    p->flipped = cdb_xcalloc((size_t)l->batch, sizeof(int));
    if (!p->dy || !p->dx || !p->flipped) return -1;
    snprintf(l->description, sizeof(l->description), "%dx%d%s%s", ch, cw, p->flip ? ", flips" : "",
             p->noadjust ? "" : ", x2-1");
    return 0;
}

LAYER_OPS_CPU_ONLY(crop, NULL, LAYER_TAKES_IMAGE, 0);
