/* [shuffle] groups=G: ShuffleNet's channel shuffle. The c channels, seen as
 * G groups of c/G, are interleaved: output channel j*G + g is input channel
 * g*(c/G) + j (PyTorch's view(G, c/G).transpose(0, 1)). */
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "shuffle_layer.h"

/* input channel of output channel k */
static int source_channel(int k, int channels, int groups) { return k % groups * (channels / groups) + k / groups; }

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    (void)net;
    (void)train;
    const shuffle_priv *p = l->priv;
    size_t S = (size_t)l->h * l->w;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < l->batch; b++)
        for (int k = 0; k < l->c; k++)
            memcpy(l->output + (size_t)b * l->outputs + k * S,
                   l->input + (size_t)b * l->inputs + source_channel(k, l->c, p->groups) * S, S * sizeof(float));
}

static void backward(cdb_layer *l, cdb_network *net)
{
    (void)net;
    if (!l->input_delta) return;
    const shuffle_priv *p = l->priv;
    size_t S = (size_t)l->h * l->w;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < l->batch; b++)
        for (int k = 0; k < l->c; k++) {
            const float *d = l->delta + (size_t)b * l->outputs + k * S;
            float *din = l->input_delta + (size_t)b * l->inputs + source_channel(k, l->c, p->groups) * S;
            for (size_t i = 0; i < S; i++) din[i] += d[i];
        }
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    (void)net;
    shuffle_priv *p = cdb_layer_priv(l, sizeof(shuffle_priv), NULL);
    if (!p) return -1;
    p->groups = cdb_cfg_int(r, "groups", 2, 1, 1 << 20);
    if (cdb_cfg_check_unused(r)) return -1;
    if (l->c % p->groups) {
        cdb_cfg_fail(r, "groups", "input channels %d are not divisible by groups=%d", l->c, p->groups);
        return -1;
    }
    if (cdb_layer_alloc_same_shape(l, r)) return -1;
    snprintf(l->description, sizeof(l->description), "%d groups", p->groups);
    return 0;
}

LAYER_OPS(shuffle, NULL, LAYER_TAKES_IMAGE, 0);
