/* From a parsed cfg to a network: [net] settings, then one layer per
 * section, each reading and checking its own keys. */
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#ifdef GPU
#include "cuda_utils.h"
#endif
#include "layers.h"
#include "network.h"

typedef int (*layer_maker)(cdb_layer *l, cfg_reader *r, cdb_network *net);

/* What a layer type accepts as input: an image (c, h, w), a token
 * sequence (tokens, features), or either. */
enum { TAKES_IMAGE = 1, TAKES_SEQUENCE = 2, TAKES_ANY = 3 };

static const struct {
    const char *name, *alias;
    layer_type type;
    layer_maker make;
    int takes;
} layer_kinds[] = {
    {"convolutional", "conv", LAYER_CONVOLUTIONAL, convolutional_layer_make, TAKES_IMAGE},
    {"connected", "conn", LAYER_CONNECTED, connected_layer_make, TAKES_ANY},
    {"batchnorm", NULL, LAYER_BATCHNORM, batchnorm_layer_make, TAKES_IMAGE},
    {"maxpool", "max", LAYER_MAXPOOL, maxpool_layer_make, TAKES_IMAGE},
    {"avgpool", "avg", LAYER_AVGPOOL, avgpool_layer_make, TAKES_IMAGE},
    {"shortcut", NULL, LAYER_SHORTCUT, shortcut_layer_make, TAKES_ANY},
    {"route", NULL, LAYER_ROUTE, route_layer_make, TAKES_IMAGE},
    {"dropout", NULL, LAYER_DROPOUT, dropout_layer_make, TAKES_ANY},
    {"softmax", "soft", LAYER_SOFTMAX, softmax_layer_make, TAKES_IMAGE},
    {"tokens", NULL, LAYER_TOKENS, tokens_layer_make, TAKES_IMAGE},
    {"cls_token", NULL, LAYER_CLS_TOKEN, cls_token_layer_make, TAKES_SEQUENCE},
    {"pos_embed", NULL, LAYER_POS_EMBED, pos_embed_layer_make, TAKES_SEQUENCE},
    {"layernorm", NULL, LAYER_LAYERNORM, layernorm_layer_make, TAKES_SEQUENCE},
    {"attention", NULL, LAYER_ATTENTION, attention_layer_make, TAKES_SEQUENCE},
    {"token_pool", NULL, LAYER_TOKEN_POOL, token_pool_layer_make, TAKES_SEQUENCE},
};
#define N_LAYER_KINDS ((int)(sizeof(layer_kinds) / sizeof(layer_kinds[0])))

/* Darknet [net] keys for image augmentation that cdbnet does not implement:
 * accepted, so Darknet classifier cfgs load, with a warning. */
static const char *const darknet_ignored_keys[] = {"angle", "saturation", "exposure", "hue", "aspect",
                                                   "max_crop", "min_crop", "center", NULL};

static int read_net(cfg_reader *r, cdb_network *net)
{
    net->batch = cfg_int(r, "batch", 1, 1, 1 << 20);
    net->subdivisions = cfg_int(r, "subdivisions", 1, 1, 1 << 20);
    net->w = cfg_int(r, "width", 0, 1, 1 << 16);
    net->h = cfg_int(r, "height", 0, 1, 1 << 16);
    net->c = cfg_int(r, "channels", 0, 1, 1 << 16);
    net->classes = cfg_int(r, "classes", 0, 1, 1 << 20);
    const char *data = cfg_str(r, "data", NULL);
    net->data_path = data ? xstrdup(data) : NULL;
    train_config *t = &net->train;
    static const char *const optimizers[] = {"sgd", "adamw", NULL};
    t->optimizer = (optimizer_kind)cfg_choice(r, "optimizer", optimizers, OPT_SGD);
    t->learning_rate = cfg_float(r, "learning_rate", 0.001f, 0.f, 100.f);
    t->momentum = cfg_float(r, "momentum", 0.9f, 0.f, 0.9999f);
    t->decay = cfg_float(r, "decay", 0.0001f, 0.f, 1.f);
    t->nesterov = cfg_int(r, "nesterov", 0, 0, 1);
    t->beta1 = cfg_float(r, "beta1", 0.9f, 0.f, 0.9999f);
    t->beta2 = cfg_float(r, "beta2", 0.999f, 0.f, 0.999999f);
    t->eps = cfg_float(r, "eps", 1e-8f, 0.f, 1.f);
    t->decay_norm_bias = cfg_int(r, "decay_norm_bias", 1, 0, 1);
    static const char *const policies[] = {"constant", "steps", "poly", "cosine", NULL};
    t->policy = (lr_policy)cfg_choice(r, "policy", policies, POLICY_CONSTANT);
    t->power = cfg_float(r, "power", 4.f, 0.f, 100.f);
    t->burn_in = cfg_int(r, "burn_in", 0, 0, 1 << 30);
    t->learning_rate_min = cfg_float(r, "learning_rate_min", 0.f, 0.f, 100.f);
    t->max_batches = cfg_int(r, "max_batches", 0, 0, 1 << 30);
    t->max_epochs = cfg_int(r, "max_epochs", 0, 0, 1 << 20);
    if (t->policy == POLICY_STEPS) {
        if (!cfg_has(r, "steps") || !cfg_has(r, "scales")) {
            cfg_fail(r, "policy", "policy=steps needs both steps= and scales=");
            return -1;
        }
        t->nsteps = cfg_int_list(r, "steps", t->steps, MAX_LR_STEPS);
        int nscales = cfg_float_list(r, "scales", t->scales, MAX_LR_STEPS);
        if (!r->failed && nscales != t->nsteps) {
            cfg_fail(r, "scales", "%d scales given for %d steps", nscales, t->nsteps);
            return -1;
        }
    }
    net->seed = (uint64_t)cfg_int(r, "seed", 1, 0, 2147483647);
    input_config *in = &net->input_cfg;
    in->crop_pad = cfg_int(r, "crop_pad", 0, 0, 64);
    in->flip = cfg_int(r, "flip", 0, 0, 1);
    in->nmean = cfg_has(r, "mean") ? cfg_float_list(r, "mean", in->mean, 4) : 0;
    in->nstd = cfg_has(r, "std") ? cfg_float_list(r, "std", in->std, 4) : 0;
    net->label_smoothing = cfg_float(r, "label_smoothing", 0.f, 0.f, 0.999f);
    net->valid_every = cfg_int(r, "valid_every", 0, 0, 1 << 30);
    net->save_every = cfg_int(r, "save_every", 0, 0, 1 << 30);

    dropback_config *d = &net->dropback;
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
    static const char *const policies_db[] = {"bernoulli", "single", NULL};
    static const char *const modes[] = {"grad", "strict", NULL};
    static const char *const axes[] = {"in", "out", NULL};
    d->policy = (dropback_policy)cfg_choice(r, "dropback_policy", policies_db, d->policy);
    d->mode = (dropback_mode)cfg_choice(r, "dropback_mode", modes, d->mode);
    d->axis = (dropback_axis)cfg_choice(r, "dropback_axis", axes, d->axis);
    d->skip_compute = cfg_int(r, "dropback_skip_compute", d->skip_compute, 0, 1);

    for (int i = 0; darknet_ignored_keys[i]; i++)
        if (cfg_has(r, darknet_ignored_keys[i])) {
            cfg_str(r, darknet_ignored_keys[i], "");
            fprintf(stderr, "warning: %s: [net] key '%s' (Darknet image augmentation) is not implemented and is ignored\n",
                    r->file->path, darknet_ignored_keys[i]);
        }
    if (r->failed) return -1;
    if (!cfg_has(r, "width") || !cfg_has(r, "height") || !cfg_has(r, "channels")) {
        cfg_fail(r, NULL, "[net] needs width, height and channels");
        return -1;
    }
    if (net->batch % net->subdivisions) {
        cfg_fail(r, "subdivisions", "batch=%d is not divisible by subdivisions=%d", net->batch, net->subdivisions);
        return -1;
    }
    if (in->nmean && in->nmean != net->c) {
        cfg_fail(r, "mean", "%d values for %d channels", in->nmean, net->c);
        return -1;
    }
    if (in->nstd && in->nstd != net->c) {
        cfg_fail(r, "std", "%d values for %d channels", in->nstd, net->c);
        return -1;
    }
    for (int i = 0; i < in->nstd; i++)
        if (in->std[i] <= 0) {
            cfg_fail(r, "std", "values must be positive");
            return -1;
        }
    if (t->max_batches && t->max_epochs) {
        cfg_fail(r, "max_epochs", "give either max_batches or max_epochs, not both");
        return -1;
    }
    if ((long)net->w * net->h * net->c > (1L << 30)) {
        cfg_fail(r, NULL, "the input (%d x %d x %d) is too large", net->w, net->h, net->c);
        return -1;
    }
    net->mini_batch = net->batch / net->subdivisions;
    net->inputs = net->w * net->h * net->c;
    return cfg_check_unused(r);
}

static void collect_params(cdb_network *net)
{
    int count = 0;
    for (int i = 0; i < net->n; i++) count += net->layers[i].nparams;
    net->params = xcalloc((size_t)count, sizeof(cdb_param *));
    net->nparams = 0;
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].nparams; k++) {
            cdb_param *p = &net->layers[i].params[k];
            if (!net->train.decay_norm_bias && !p->eligible) p->decay = 0;
            net->params[net->nparams++] = p;
        }
}

void cdb_network_free(cdb_network *net)
{
    if (!net) return;
#ifdef GPU
    if (net->gpu) gpu_release(net);
#endif
    for (int i = 0; i < net->n; i++) {
        cdb_layer *l = &net->layers[i];
        if (l->destroy) l->destroy(l);
        for (int k = 0; k < l->nparams; k++) {
            free(l->params[k].value);
            free(l->params[k].grad);
            free(l->params[k].moment1);
            free(l->params[k].moment2);
            free(l->params[k].dropped);
        }
        free(l->output);
        free(l->delta);
    }
    free(net->layers);
    free(net->params);
    free(net->input);
    free(net->truth);
    free(net->input_delta);
    free(net->forward_seconds);
    free(net->skip_scratch);
    free(net->backward_seconds);
    free(net->workspace);
    free(net->data_path);
    free(net->cfg_path);
    free(net);
}

cdb_network *network_build(cfg_file *cfg)
{
    cdb_network *net = xcalloc(1, sizeof(cdb_network));
    net->cfg_path = xstrdup(cfg->path);
    if (strcmp(cfg->sections[0].type, "net") && strcmp(cfg->sections[0].type, "network")) {
        cdb_set_error("%s:%d: the first section must be [net], not [%s]", cfg->path, cfg->sections[0].line,
                      cfg->sections[0].type);
        goto fail;
    }
    cfg_reader nr = cfg_reader_for(cfg, 0, -1);
    if (read_net(&nr, net)) goto fail;
    net->input = xcalloc((size_t)net->mini_batch * net->inputs, sizeof(float));
    net->n = cfg->n - 1;
    if (net->n == 0) {
        cdb_set_error("%s: no layers after [net]", cfg->path);
        goto fail;
    }
    net->layers = xcalloc((size_t)net->n, sizeof(cdb_layer));
    int built = 0;
    for (int i = 0; i < net->n; i++) {
        cfg_section *sec = &cfg->sections[i + 1];
        cdb_layer *l = &net->layers[i];
        l->index = i;
        l->batch = net->mini_batch;
        if (i == 0) {
            l->c = net->c;
            l->h = net->h;
            l->w = net->w;
            l->input = net->input;
            l->input_delta = NULL;
        } else {
            cdb_layer *prev = &net->layers[i - 1];
            l->c = prev->out_c;
            l->h = prev->out_h;
            l->w = prev->out_w;
            l->input = prev->output;
            l->input_delta = prev->delta;
            l->tokens = prev->out_tokens;
        }
        l->inputs = l->c * l->h * l->w;
        int kind = -1;
        for (int k = 0; k < N_LAYER_KINDS; k++)
            if (!strcmp(sec->type, layer_kinds[k].name) ||
                (layer_kinds[k].alias && !strcmp(sec->type, layer_kinds[k].alias)))
                kind = k;
        if (kind < 0) {
            cdb_set_error("%s:%d: unknown section [%s] (layer %d); known layer types: convolutional, connected, "
                          "batchnorm, maxpool, avgpool, shortcut, route, dropout, softmax, tokens, cls_token, "
                          "pos_embed, layernorm, attention, token_pool",
                          cfg->path, sec->line, sec->type, i);
            net->n = built;
            goto fail;
        }
        int is_sequence = l->tokens > 0;
        if (!(layer_kinds[kind].takes & (is_sequence ? TAKES_SEQUENCE : TAKES_IMAGE))) {
            if (is_sequence)
                cdb_set_error("%s:%d: [%s] (layer %d) needs an image-shaped input but gets a sequence of %d tokens "
                              "(use [token_pool] first)",
                              cfg->path, sec->line, sec->type, i, l->tokens);
            else
                cdb_set_error("%s:%d: [%s] (layer %d) needs a token sequence but gets a %dx%dx%d image (use "
                              "[tokens] first)",
                              cfg->path, sec->line, sec->type, i, l->c, l->h, l->w);
            net->n = built;
            goto fail;
        }
        l->type = layer_kinds[kind].type;
        l->type_name = layer_kinds[kind].name;
        cfg_reader r = cfg_reader_for(cfg, i + 1, i);
        int status = layer_kinds[kind].make(l, &r, net);
        built = i + 1;
        if (status || r.failed) {
            net->n = built;
            goto fail;
        }
        if (l->workspace_floats > net->workspace_floats) net->workspace_floats = l->workspace_floats;
    }
    cdb_layer *last = &net->layers[net->n - 1];
    if (last->type != LAYER_SOFTMAX) {
        cdb_set_error("%s:%d: the last layer must be [softmax] (softmax with the cross-entropy cost), not [%s]",
                      cfg->path, cfg->sections[cfg->n - 1].line, cfg->sections[cfg->n - 1].type);
        goto fail;
    }
    if (net->classes && net->classes != last->outputs) {
        cdb_set_error("%s: [net] classes=%d but the network ends with %d outputs", cfg->path, net->classes,
                      last->outputs);
        goto fail;
    }
    net->classes = last->outputs;
    net->truth = xcalloc((size_t)net->mini_batch * net->classes, sizeof(float));
    net->workspace = xcalloc(net->workspace_floats ? net->workspace_floats : 1, sizeof(float));
    collect_params(net);
    dropback_resolve(&net->dropback, net->params, net->nparams);
    return net;
fail:
    cdb_network_free(net);
    return NULL;
}
