/* The helpers a layer's make uses (layers.h): output buffers, trainable
 * tensors, weights-file arrays, common keys and initialisation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"

/* Largest tensor a layer may produce per image: sizes are ints. */
#define MAX_LAYER_OUTPUTS (1L << 30)

int cdb_layer_alloc_output(cdb_layer *l, cfg_reader *r)
{
    long outputs = (long)l->out_c * l->out_h * l->out_w;
    if (outputs <= 0 || outputs > MAX_LAYER_OUTPUTS || (long)l->batch * outputs > (1L << 34)) {
        cdb_cfg_fail(r, NULL, "the output (%d x %d x %d per image, batch %d) is too large", l->out_c, l->out_h, l->out_w,
                 l->batch);
        return -1;
    }
    l->inputs = l->c * l->h * l->w;
    l->outputs = (int)outputs;
    l->output = cdb_xcalloc((size_t)l->batch * l->outputs, sizeof(float));
    l->delta = cdb_xcalloc((size_t)l->batch * l->outputs, sizeof(float));
    if (!l->output || !l->delta) {
        cdb_cfg_fail(r, NULL, "out of memory for the output (2 x %zu bytes)", (size_t)l->batch * l->outputs * sizeof(float));
        return -1;
    }
    return 0;
}

void *cdb_layer_priv(cdb_layer *l, size_t size, void (*destroy)(cdb_layer *l))
{
    l->priv = cdb_xcalloc(1, size);
    l->destroy = l->priv ? destroy : NULL;
    return l->priv;
}

cdb_param *cdb_layer_add_param(cdb_layer *l, const char *name, size_t size, int eligible, int rows, int channels,
                           int inner)
{
    /* One more than fits goes to the spare slot; cdb_network_build reports it. */
    cdb_param *p = &l->params[l->nparams < LAYER_MAX_PARAMS ? l->nparams : LAYER_MAX_PARAMS];
    if (l->nparams <= LAYER_MAX_PARAMS) l->nparams++;
    free(p->value);
    free(p->grad);
    cdb_dropback_detach(p);
    memset(p, 0, sizeof(*p));
    p->name = name;
    p->size = size;
    p->value = cdb_xcalloc(size, sizeof(float));
    p->grad = cdb_xcalloc(size, sizeof(float));
    p->eligible = eligible;
    p->rows = rows;
    p->channels = channels;
    p->inner = inner;
    p->decay = 1;
    if (eligible) cdb_dropback_attach(p); /* a failure is counted, as the buffers' (cdb_network_build reports it) */
    return p;
}

void cdb_layer_add_io(cdb_layer *l, float *array, size_t n)
{
    /* as cdb_layer_add_param: one too many goes to the spare slot */
    int k = l->nio < LAYER_MAX_IO ? l->nio : LAYER_MAX_IO;
    l->io[k] = array;
    l->io_size[k] = n;
    if (l->nio <= LAYER_MAX_IO) l->nio++;
}

void cdb_layer_add_io_variance(cdb_layer *l, float *array, size_t n)
{
    cdb_layer_add_io(l, array, n);
    l->io_variance |= 1u << (l->nio - 1);
}

activation cdb_layer_read_activation(cfg_reader *r, activation def)
{
    const char *name = cdb_cfg_str(r, "activation", NULL);
    if (!name) return def;
    activation a;
    if (cdb_activation_from_name(name, &a)) {
        if (!strcmp(name, "stair") || !strncmp(name, "normalize_channels", 18)) {
            cdb_cfg_fail(r, "activation",
                     "'%s' is a Darknet activation cdbnet does not implement (%s)", name,
                     name[0] == 's' ? "a staircase whose Darknet gradient is not its derivative"
                                    : "a normalisation across channels, not an element-wise function");
            return def;
        }
        char list[512] = "";
        for (int i = 0; cdb_activation_names[i]; i++)
            snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", cdb_activation_names[i]);
        cdb_cfg_fail(r, "activation", "'%s' is not one of: %s (silu is swish)", name, list);
        return def;
    }
    return a;
}

int cdb_layer_alloc_same_shape(cdb_layer *l, cfg_reader *r)
{
    l->out_c = l->c;
    l->out_h = l->h;
    l->out_w = l->w;
    l->out_tokens = l->tokens;
    return cdb_layer_alloc_output(l, r);
}

void cdb_layer_set_sequence_output(cdb_layer *l, int tokens, int features)
{
    l->out_tokens = tokens;
    l->out_c = features;
    l->out_h = tokens;
    l->out_w = 1;
}

void cdb_init_trunc_normal(float *w, size_t n, float std, uint64_t seed, int layer_index, int salt)
{
    if (!w) return; /* its allocation failed: cdb_network_build reports it */
    cdb_rng rng = cdb_rng_stream(seed, RNG_STREAM_INIT, ((uint64_t)salt << 32) | (uint64_t)layer_index);
    for (size_t i = 0; i < n; i++) {
        float v;
        do v = cdb_rng_normal(&rng);
        while (v < -2.f || v > 2.f);
        w[i] = std * v;
    }
}

void cdb_init_weights(float *w, size_t n, int fan_in, float init_std, uint64_t seed, int layer_index)
{
    if (!w) return; /* as above */
    if (init_std > 0) {
        cdb_init_trunc_normal(w, n, init_std, seed, layer_index, 0);
        return;
    }
    cdb_rng rng = cdb_rng_stream(seed, RNG_STREAM_INIT, (uint64_t)layer_index);
    float bound = sqrtf(6.f / (float)(fan_in > 0 ? fan_in : 1));
    for (size_t i = 0; i < n; i++) w[i] = (2.f * cdb_rng_uniform(&rng) - 1.f) * bound;
}

cdb_rng cdb_layer_pass_rng(const cdb_layer *l, const cdb_network *net)
{
    uint64_t counter = ((uint64_t)net->pass.step << 24) ^ ((uint64_t)net->pass.subdivision << 12) ^ (uint64_t)l->index;
    return cdb_rng_stream(net->seed, RNG_STREAM_DROPOUT, counter);
}

int cdb_layer_read_from(cfg_reader *r, const cdb_layer *l, const char *what)
{
    if (!cdb_cfg_has(r, "from")) {
        cdb_cfg_fail(r, NULL, "missing key 'from' (%s, e.g. from=-3)", what);
        return -1;
    }
    int ref = cdb_cfg_int(r, "from", -1, -(1 << 20), 1 << 20);
    if (r->failed) return -1;
    int from = cdb_layer_resolve_ref(l->index, ref);
    if (from < 0) cdb_cfg_fail(r, "from", "%d does not name an earlier layer", ref);
    return from;
}

int cdb_layer_resolve_ref(int self, int ref)
{
    int idx = ref < 0 ? self + ref : ref;
    return (idx >= 0 && idx < self) ? idx : -1;
}

