/* [route]: concatenation along channels of the layers named by `layers`
 * (all with the same height and width). */
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "route_layer.h"

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    (void)train;
    route_priv *p = l->priv;
    for (int b = 0; b < l->batch; b++) {
        size_t offset = 0;
        for (int i = 0; i < p->n; i++) {
            const cdb_layer *src = &net->layers[p->from[i]];
            memcpy(l->output + (size_t)b * l->outputs + offset, src->output + (size_t)b * src->outputs,
                   (size_t)src->outputs * sizeof(float));
            offset += (size_t)src->outputs;
        }
    }
}

static void backward(cdb_layer *l, cdb_network *net)
{
    route_priv *p = l->priv;
    for (int b = 0; b < l->batch; b++) {
        size_t offset = 0;
        for (int i = 0; i < p->n; i++) {
            cdb_layer *src = &net->layers[p->from[i]];
            float *dst = src->delta + (size_t)b * src->outputs;
            const float *d = l->delta + (size_t)b * l->outputs + offset;
            for (int k = 0; k < src->outputs; k++) dst[k] += d[k];
            offset += (size_t)src->outputs;
        }
    }
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    route_priv *p = layer_priv(l, sizeof(route_priv), NULL);
    if (!p) return -1;
    int refs[ROUTE_MAX];
    if (!cfg_has(r, "layers")) {
        cfg_fail(r, NULL, "missing key 'layers' (e.g. layers=-1,-4)");
        return -1;
    }
    p->n = cfg_int_list(r, "layers", refs, ROUTE_MAX);
    if (cfg_check_unused(r)) return -1;
    l->out_c = 0;
    for (int i = 0; i < p->n; i++) {
        p->from[i] = layer_resolve_ref(l->index, refs[i]);
        if (p->from[i] < 0) {
            cfg_fail(r, "layers", "%d does not name an earlier layer", refs[i]);
            return -1;
        }
        const cdb_layer *src = &net->layers[p->from[i]];
        if (i == 0) {
            l->out_h = src->out_h;
            l->out_w = src->out_w;
        } else if (src->out_h != l->out_h || src->out_w != l->out_w) {
            cfg_fail(r, "layers", "layer %d is %dx%d but layer %d is %dx%d: routed layers must match in size",
                     p->from[i], src->out_h, src->out_w, p->from[0], l->out_h, l->out_w);
            return -1;
        }
        l->out_c += src->out_c;
    }
    if (layer_alloc_output(l, r)) return -1;
    int len = snprintf(l->description, sizeof(l->description), "layers");
    for (int i = 0; i < p->n && len < (int)sizeof(l->description) - 8; i++)
        len += snprintf(l->description + len, sizeof(l->description) - len, " %d", p->from[i]);
    return 0;
}

LAYER_OPS(route, NULL, LAYER_TAKES_IMAGE, 0);
