/* [route]: concatenation along channels of the layers named by `layers`
 * (all with the same height and width). With groups=G group_id=k
 * (AlexeyAB's form, ShuffleNetV2's channel split) each layer gives only
 * its k-th part of G: channels [k c/G, (k+1) c/G). */
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
            size_t from, part;
            route_part(p, src, &from, &part);
            memcpy(l->output + (size_t)b * l->outputs + offset, src->output + (size_t)b * src->outputs + from,
                   part * sizeof(float));
            offset += part;
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
            size_t from, part;
            route_part(p, src, &from, &part);
            float *dst = src->delta + (size_t)b * src->outputs + from;
            const float *d = l->delta + (size_t)b * l->outputs + offset;
            for (size_t k = 0; k < part; k++) dst[k] += d[k];
            offset += part;
        }
    }
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    route_priv *p = cdb_layer_priv(l, sizeof(route_priv), NULL);
    if (!p) return -1;
    int refs[ROUTE_MAX];
    if (!cdb_cfg_has(r, "layers")) {
        cdb_cfg_fail(r, NULL, "missing key 'layers' (e.g. layers=-1,-4)");
        return -1;
    }
    p->n = cdb_cfg_int_list(r, "layers", refs, ROUTE_MAX);
    p->groups = cdb_cfg_int(r, "groups", 1, 1, 1 << 20);
    p->group_id = cdb_cfg_int(r, "group_id", 0, 0, 1 << 20);
    if (cdb_cfg_check_unused(r)) return -1;
    if (p->group_id >= p->groups) {
        cdb_cfg_fail(r, "group_id", "%d is not below groups=%d", p->group_id, p->groups);
        return -1;
    }
    l->out_c = 0;
    for (int i = 0; i < p->n; i++) {
        p->from[i] = cdb_layer_resolve_ref(l->index, refs[i]);
        if (p->from[i] < 0) {
            cdb_cfg_fail(r, "layers", "%d does not name an earlier layer", refs[i]);
            return -1;
        }
        const cdb_layer *src = &net->layers[p->from[i]];
        if (i == 0) {
            l->out_h = src->out_h;
            l->out_w = src->out_w;
        } else if (src->out_h != l->out_h || src->out_w != l->out_w) {
            cdb_cfg_fail(r, "layers", "layer %d is %dx%d but layer %d is %dx%d: routed layers must match in size",
                     p->from[i], src->out_h, src->out_w, p->from[0], l->out_h, l->out_w);
            return -1;
        }
        if (src->out_c % p->groups) {
            cdb_cfg_fail(r, "groups", "layer %d has %d channels, not divisible by groups=%d", p->from[i], src->out_c,
                     p->groups);
            return -1;
        }
        l->out_c += src->out_c / p->groups;
    }
    if (cdb_layer_alloc_output(l, r)) return -1;
    int len = snprintf(l->description, sizeof(l->description), "layers");
    for (int i = 0; i < p->n && len < (int)sizeof(l->description) - 8; i++)
        len += snprintf(l->description + len, sizeof(l->description) - len, " %d", p->from[i]);
    if (p->groups > 1 && len < (int)sizeof(l->description) - 24)
        snprintf(l->description + len, sizeof(l->description) - len, ", part %d of %d", p->group_id, p->groups);
    return 0;
}

LAYER_OPS(route, NULL, LAYER_TAKES_IMAGE, 0);
