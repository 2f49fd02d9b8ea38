/* From a parsed cfg to a network: [net] settings, then one layer per
 * section, each reading and checking its own keys. */
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "dist.h"
#include "layers.h"
#include "network.h"
#include "schedule.h"


static int read_net(cfg_reader *r, cdb_network *net)
{
    net->batch = cdb_cfg_int(r, "batch", 1, 1, 1 << 20);
    net->subdivisions = cdb_cfg_int(r, "subdivisions", 1, 1, 1 << 20);
    net->w = cdb_cfg_int(r, "width", 0, 1, 1 << 16);
    net->h = cdb_cfg_int(r, "height", 0, 1, 1 << 16);
    net->c = cdb_cfg_int(r, "channels", 0, 1, 1 << 16);
    net->classes = cdb_cfg_int(r, "classes", 0, 1, 1 << 20);
    const char *data = cdb_cfg_str(r, "data", NULL);
    net->data_path = data ? cdb_xstrdup(data) : NULL;
    train_config *t = &net->train;
    static const char *const optimizers[] = {"sgd", "adamw", NULL};
    t->optimizer = (optimizer_kind)cdb_cfg_choice(r, "optimizer", optimizers, OPT_SGD);
    t->learning_rate = cdb_cfg_float(r, "learning_rate", 0.001f, 0.f, 100.f);
    t->momentum = cdb_cfg_float(r, "momentum", 0.9f, 0.f, 0.9999f);
    t->decay = cdb_cfg_float(r, "decay", 0.0001f, 0.f, 1.f);
    t->nesterov = cdb_cfg_int(r, "nesterov", 0, 0, 1);
    t->beta1 = cdb_cfg_float(r, "beta1", 0.9f, 0.f, 0.9999f);
    t->beta2 = cdb_cfg_float(r, "beta2", 0.999f, 0.f, 0.999999f);
    t->eps = cdb_cfg_float(r, "eps", 1e-8f, 1e-30f, 1.f); /* 0 would divide 0 by 0 where a gradient is 0 */
    static const char *const nan_policies[] = {"stop", "skip_step", NULL};
    t->nan_policy = cdb_cfg_choice(r, "nan_policy", nan_policies, 0);
    t->darknet = cdb_cfg_int(r, "darknet", 0, 0, 1);
    t->decay_norm_bias = cdb_cfg_int(r, "decay_norm_bias", !t->darknet, 0, 1);
    static const char *const policies[] = {"constant", "steps", "poly", "cosine", "step", "exp", "sig", "sgdr", NULL};
    t->policy = (lr_policy)cdb_cfg_choice(r, "policy", policies, POLICY_CONSTANT);
    t->power = cdb_cfg_float(r, "power", 4.f, 0.f, 100.f);
    t->burn_in = cdb_cfg_int(r, "burn_in", 0, 0, 1 << 30);
    /* Darknet's default for sgdr, 0 for cdbnet's cosine */
    t->learning_rate_min = cdb_cfg_float(r, "learning_rate_min", t->policy == POLICY_SGDR ? 0.00001f : 0.f, 0.f, 100.f);
    t->max_batches = cdb_cfg_int(r, "max_batches", 0, 0, 1 << 30);
    t->max_epochs = cdb_cfg_int(r, "max_epochs", 0, 0, 1 << 20);
    /* Darknet's step, exp and sig policies (their keys only with them) */
    if (t->policy == POLICY_STEP || t->policy == POLICY_SIG) t->step = cdb_cfg_int(r, "step", 1, 1, 1 << 30);
    if (t->policy == POLICY_STEP) t->scale = cdb_cfg_float(r, "scale", 1.f, 0.f, 100.f);
    if (t->policy == POLICY_EXP || t->policy == POLICY_SIG) t->gamma = cdb_cfg_float(r, "gamma", 1.f, -100.f, 100.f);
    if (t->policy == POLICY_SGDR) { /* AlexeyAB's warm restarts: sgdr_cycle 0 is the run's length */
        t->sgdr_cycle = cdb_cfg_int(r, "sgdr_cycle", 0, 1, 1 << 30);
        t->sgdr_mult = cdb_cfg_int(r, "sgdr_mult", 2, 1, 1 << 10);
    }
    /* a key of another policy: said so, rather than "unknown key" */
    static const struct {
        const char *key;
        lr_policy a, b;
        const char *policies;
    } own[] = {{"steps", POLICY_STEPS, POLICY_STEPS, "steps"},         {"scales", POLICY_STEPS, POLICY_STEPS, "steps"},
               {"step", POLICY_STEP, POLICY_SIG, "step and sig"},      {"scale", POLICY_STEP, POLICY_STEP, "step"},
               {"gamma", POLICY_EXP, POLICY_SIG, "exp and sig"},        {"sgdr_cycle", POLICY_SGDR, POLICY_SGDR, "sgdr"},
               {"sgdr_mult", POLICY_SGDR, POLICY_SGDR, "sgdr"}};
    for (size_t k = 0; k < sizeof(own) / sizeof(own[0]); k++)
        if (t->policy != own[k].a && t->policy != own[k].b && cdb_cfg_has(r, own[k].key)) {
            cdb_cfg_fail(r, own[k].key, "applies to policy=%s only; this cfg's policy is %s (remove the key, or set the "
                                        "policy it belongs to)",
                         own[k].policies, policies[t->policy]);
            return -1;
        }
    if (t->policy == POLICY_STEPS) {
        if (!cdb_cfg_has(r, "steps") || !cdb_cfg_has(r, "scales")) {
            cdb_cfg_fail(r, "policy", "policy=steps needs both steps= and scales=");
            return -1;
        }
        /* Step numbers, or fractions of the training length (0.3,0.6). */
        t->nsteps = cdb_cfg_float_list(r, "steps", t->step_fractions, MAX_LR_STEPS);
        int nscales = cdb_cfg_float_list(r, "scales", t->scales, MAX_LR_STEPS);
        if (r->failed) return -1;
        if (nscales != t->nsteps) {
            cdb_cfg_fail(r, "scales", "%d scales given for %d steps", nscales, t->nsteps);
            return -1;
        }
        int fractions = 0;
        for (int i = 0; i < t->nsteps; i++) fractions += t->step_fractions[i] > 0 && t->step_fractions[i] < 1;
        t->steps_fractional = fractions == t->nsteps;
        for (int i = 0; !t->steps_fractional && i < t->nsteps; i++) {
            float v = t->step_fractions[i];
            if (v < 0 || v != floorf(v) || v > (float)(1 << 30)) {
                cdb_cfg_fail(r, "steps", "'%g' is neither a step number nor, with all the others, a fraction of the "
                                     "training in (0, 1)",
                         v);
                return -1;
            }
            t->steps[i] = (int)v;
        }
        for (int i = 1; i < t->nsteps; i++)
            if (t->step_fractions[i] < t->step_fractions[i - 1]) {
                cdb_cfg_fail(r, "steps", "steps must not decrease");
                return -1;
            }
        cdb_schedule_resolve(t);
    }
    net->seed = (uint64_t)cdb_cfg_int(r, "seed", 1, 0, 2147483647);
    input_config *in = &net->input_cfg;
    in->crop_pad = cdb_cfg_int(r, "crop_pad", 0, 0, 64);
    /* Darknet's classifiers flip by default (AlexeyAB's flip=1; pjreddie's always) */
    in->flip = cdb_cfg_int(r, "flip", t->darknet ? 1 : 0, 0, 1);
    in->angle = cdb_cfg_float(r, "angle", 0.f, 0.f, 180.f);
    in->hue = cdb_cfg_float(r, "hue", 0.f, 0.f, 0.5f);
    in->saturation = cdb_cfg_float(r, "saturation", 1.f, 0.01f, 100.f);
    in->exposure = cdb_cfg_float(r, "exposure", 1.f, 0.01f, 100.f);
    in->nmean = cdb_cfg_has(r, "mean") ? cdb_cfg_float_list(r, "mean", in->mean, 4) : 0;
    in->nstd = cdb_cfg_has(r, "std") ? cdb_cfg_float_list(r, "std", in->std, 4) : 0;
    in->image_resize = cdb_cfg_int(r, "image_resize", 0, 0, 1 << 16);
    in->resized_crop = cdb_cfg_int(r, "resized_crop", 0, 0, 1);
    in->resized_crop_scale = cdb_cfg_float(r, "resized_crop_scale", 0.08f, 0.001f, 1.f);
    in->resized_crop_ratio = cdb_cfg_float(r, "resized_crop_ratio", 0.75f, 0.01f, 1.f);
    int darknet_keys = cdb_cfg_has(r, "min_crop") || cdb_cfg_has(r, "max_crop") || cdb_cfg_has(r, "aspect");
    int width = cdb_cfg_has(r, "width") ? cdb_cfg_int(r, "width", 1, 1, 1 << 16) : 1;
    in->min_crop = cdb_cfg_int(r, "min_crop", width, 1, 1 << 16);
    in->max_crop = cdb_cfg_int(r, "max_crop", 2 * width, 1, 1 << 16);
    in->aspect = cdb_cfg_float(r, "aspect", 1.f, 0.01f, 100.f);
    int center = cdb_cfg_int(r, "center", 0, 0, 1);
    in->darknet_crop = !center && !in->resized_crop && (darknet_keys || t->darknet);
    in->darknet_crop_keys = darknet_keys;
    if (darknet_keys && in->resized_crop) {
        cdb_cfg_fail(r, "resized_crop", "give resized_crop=1 (torchvision's crop) or Darknet's min_crop/max_crop/aspect, "
                                    "not both");
        return -1;
    }
    if (in->max_crop < in->min_crop) {
        cdb_cfg_fail(r, "max_crop", "max_crop=%d is below min_crop=%d", in->max_crop, in->min_crop);
        return -1;
    }
    net->label_smoothing = cdb_cfg_float(r, "label_smoothing", 0.f, 0.f, 0.999f);
    /* at most 0.5: converted to label_smoothing = eps K/(K-1), which must not pass 1 */
    net->label_smooth_eps = cdb_cfg_float(r, "label_smooth_eps", 0.f, 0.f, 0.5f);
    if (net->label_smooth_eps > 0 && net->label_smoothing > 0) {
        cdb_cfg_fail(r, "label_smooth_eps", "give label_smoothing (PyTorch's) or label_smooth_eps (Darknet's), not both");
        return -1;
    }
    net->valid_every = cdb_cfg_int(r, "valid_every", 0, 0, 1 << 30);
    net->save_every = cdb_cfg_int(r, "save_every", 0, 0, 1 << 30);

    if (cdb_dropback_read_net_keys(r, &net->dropback)) return -1;
    conv_policy *cp = &net->conv;
    cp->direct = cdb_cfg_int(r, "conv_direct", 1, 0, 1);
    cp->winograd = cdb_cfg_int(r, "conv_winograd", 1, 0, 1);
    cp->depthwise = cdb_cfg_int(r, "conv_depthwise", 1, 0, 1);
    static const char *const shifts[] = {"off", "on", "auto", NULL};
    cp->shift = (conv_shift_mode)cdb_cfg_choice(r, "conv_shift", shifts, CONV_SHIFT_AUTO);
    cp->slice_bytes = (size_t)cdb_cfg_int(r, "conv_slice_kb", 320, 1, 1 << 20) << 10;
    cp->deterministic = cdb_cfg_int(r, "conv_deterministic", 0, 0, 1);

    if (r->failed) return -1;
    if (!cdb_cfg_has(r, "width") || !cdb_cfg_has(r, "height") || !cdb_cfg_has(r, "channels")) {
        cdb_cfg_fail(r, NULL, "[net] needs width, height and channels");
        return -1;
    }
    net->ranks = cdb_dist_size();
    net->sync_bn = cdb_cfg_int(r, "sync_bn", 0, 0, 1);
    if (net->batch % net->subdivisions) {
        cdb_cfg_fail(r, "subdivisions", "batch=%d is not divisible by subdivisions=%d", net->batch, net->subdivisions);
        return -1;
    }
    if (net->batch % (net->subdivisions * net->ranks)) {
        cdb_cfg_fail(r, "batch", "batch=%d is not divisible by subdivisions=%d x %d ranks: each rank takes an equal share "
                             "of every forward",
                 net->batch, net->subdivisions, net->ranks);
        return -1;
    }
    if (in->nmean && in->nmean != net->c) {
        cdb_cfg_fail(r, "mean", "%d values for %d channels", in->nmean, net->c);
        return -1;
    }
    if (in->nstd && in->nstd != net->c) {
        cdb_cfg_fail(r, "std", "%d values for %d channels", in->nstd, net->c);
        return -1;
    }
    for (int i = 0; i < in->nstd; i++)
        if (in->std[i] <= 0) {
            cdb_cfg_fail(r, "std", "values must be positive");
            return -1;
        }
    if (t->max_batches && t->max_epochs) {
        cdb_cfg_fail(r, "max_epochs", "give either max_batches or max_epochs, not both");
        return -1;
    }
    if ((long)net->w * net->h * net->c > (1L << 30)) {
        cdb_cfg_fail(r, NULL, "the input (%d x %d x %d) is too large", net->w, net->h, net->c);
        return -1;
    }
    net->mini_batch = net->batch / (net->subdivisions * net->ranks);
    net->inputs = net->w * net->h * net->c;
    return cdb_cfg_check_unused(r);
}

static int collect_params(cdb_network *net)
{
    int count = 0;
    for (int i = 0; i < net->n; i++) count += net->layers[i].nparams;
    net->params = cdb_xcalloc((size_t)count, sizeof(cdb_param *));
    if (!net->params) return -1;
    net->nparams = 0;
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].nparams; k++) {
            cdb_param *p = &net->layers[i].params[k];
            if (!net->train.decay_norm_bias && !p->eligible) p->decay = 0;
            net->params[net->nparams++] = p;
        }
    return 0;
}

/* The layer that asked for the most memory while building. */
typedef struct {
    size_t bytes;
    int layer, line;
    const char *type;
} largest_request;

static cdb_network *build(cfg_file *cfg, largest_request *big)
{
    cdb_network *net = cdb_xcalloc(1, sizeof(cdb_network));
    if (!net) return NULL;
    net->cfg_path = cdb_xstrdup(cfg->path);
    if (!net->cfg_path) goto fail;
    if (strcmp(cfg->sections[0].type, "net") && strcmp(cfg->sections[0].type, "network")) {
        cdb_set_error("%s:%d: the first section must be [net], not [%s]", cfg->path, cfg->sections[0].line,
                      cfg->sections[0].type);
        goto fail;
    }
    cfg_reader nr = cdb_cfg_reader_for(cfg, 0, -1);
    if (read_net(&nr, net)) goto fail;
    if (cdb_failed_allocations()) goto out_of_memory;
    net->input = cdb_xcalloc((size_t)net->mini_batch * net->inputs, sizeof(float));
    if (!net->input) goto out_of_memory;
    net->n = cfg->n - 1;
    if (net->n == 0) {
        cdb_set_error("%s: no layers after [net]", cfg->path);
        goto fail;
    }
    net->layers = cdb_xcalloc((size_t)net->n, sizeof(cdb_layer));
    if (!net->layers) {
        net->n = 0;
        goto out_of_memory;
    }
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
        const layer_ops *ops = cdb_layer_ops_find(sec->type);
        if (!ops) {
            const char *why = cdb_cfg_darknet_refused_section(sec->type);
            if (why)
                cdb_set_error("%s:%d: [%s] (layer %d) is a Darknet layer cdbnet does not implement (%s); see "
                              "docs/cfg.md, From Darknet",
                              cfg->path, sec->line, sec->type, i, why);
            else
                cdb_set_error("%s:%d: unknown section [%s] (layer %d); known layer types: %s", cfg->path, sec->line,
                              sec->type, i, cdb_layer_type_names());
            net->n = built;
            goto fail;
        }
        int is_sequence = l->tokens > 0;
        if (!(ops->takes & (is_sequence ? LAYER_TAKES_SEQUENCE : LAYER_TAKES_IMAGE))) {
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
        l->ops = ops;
        cfg_reader r = cdb_cfg_reader_for(cfg, i + 1, i);
        size_t used_before = cdb_budget_used();
        int status = ops->make(l, &r, net);
        built = i + 1;
        if (cdb_budget_used() - used_before >= big->bytes) {
            big->bytes = cdb_budget_used() - used_before;
            big->layer = i;
            big->line = sec->line;
            big->type = ops->name;
        }
        if (cdb_failed_allocations()) {
            if (!r.failed) {
                char why[256];
                snprintf(why, sizeof(why), "%s", cdb_last_error());
                cdb_set_error("%s:%d: [%s] (layer %d): %s", cfg->path, sec->line, sec->type, i, why);
            }
            net->n = built;
            goto fail;
        }
        if (!status && !r.failed && (l->nparams > LAYER_MAX_PARAMS || l->nio > LAYER_MAX_IO)) {
            cdb_set_error("%s:%d: internal error: [%s] (layer %d) declares more than %d tensors or %d weights-file "
                          "arrays",
                          cfg->path, sec->line, sec->type, i, LAYER_MAX_PARAMS, LAYER_MAX_IO);
            status = -1;
        }
        if (status || r.failed) {
            net->n = built;
            goto fail;
        }
        if (l->workspace_floats > net->workspace_floats) net->workspace_floats = l->workspace_floats;
    }
    /* A cost layer reads the targets (net->truth, sized by the last layer):
     * only the last layer may be one, and [softmax] may be followed by a
     * [cost], which is the last. */
    for (int i = 0; i < net->n - 1; i++)
        if (net->layers[i].ops->loss && !(i == net->n - 2 && !strcmp(net->layers[i + 1].ops->name, "cost"))) {
            cdb_set_error("%s:%d: [%s] (layer %d) computes the cost: it must be the last layer (only a [cost] may "
                          "follow a [softmax])",
                          cfg->path, cfg->sections[i + 1].line, cfg->sections[i + 1].type, i);
            goto fail;
        }
    cdb_layer *last = &net->layers[net->n - 1];
    if (!last->ops->loss) {
        cdb_set_error("%s:%d: the last layer must be [softmax] (softmax with the cross-entropy cost), not [%s]",
                      cfg->path, cfg->sections[cfg->n - 1].line, cfg->sections[cfg->n - 1].type);
        goto fail;
    }
    if (net->classes && net->classes != last->outputs) {
        int line = cfg->sections[0].line;
        for (int k = 0; k < cfg->sections[0].n; k++)
            if (!strcmp(cfg->sections[0].kv[k].key, "classes") && cfg->sections[0].kv[k].line) line = cfg->sections[0].kv[k].line;
        cdb_set_error("%s:%d: [net] key 'classes': classes=%d but the network ends with %d outputs (layer %d [%s])",
                      cfg->path, line, net->classes, last->outputs, net->n - 1, last->ops->name);
        goto fail;
    }
    net->classes = last->outputs;
    /* Darknet's 1 - eps and eps/(K-1) is PyTorch's smoothing of eps K/(K-1). */
    if (net->label_smooth_eps > 0 && net->classes > 1)
        net->label_smoothing = net->label_smooth_eps * net->classes / (net->classes - 1);
    net->truth = cdb_xcalloc((size_t)net->mini_batch * net->classes, sizeof(float));
    net->workspace = cdb_xcalloc(net->workspace_floats ? net->workspace_floats : 1, sizeof(float));
    if (!net->truth || !net->workspace || collect_params(net) ||
        cdb_dropback_resolve(&net->dropback, net->params, net->nparams))
        goto out_of_memory;
    return net;
out_of_memory: {
    char why[256];
    snprintf(why, sizeof(why), "%s", cdb_last_error());
    cdb_set_error("%s: building the network: %s", cfg->path, why);
}
fail:
    cdb_network_free(net);
    return NULL;
}

/* Optimizer state the first step allocates: momentum (SGD) or two moments (AdamW). */
static size_t optimizer_bytes(const cdb_network *net)
{
    size_t floats = 0;
    for (int i = 0; i < net->nparams; i++) floats += net->params[i]->size;
    return floats * sizeof(float) * (net->train.optimizer == OPT_ADAMW ? 2 : 1);
}

cdb_network *cdb_network_build(cfg_file *cfg)
{
    cdb_reset_failed_allocations();
    size_t limit = cdb_memory_limit();
    largest_request big = {0, -1, 0, NULL};
    cdb_budget_begin(limit);
    cdb_network *net = build(cfg, &big);
    int exceeded = cdb_budget_exceeded() || (net && limit && cdb_budget_used() + optimizer_bytes(net) > limit);
    size_t used = cdb_budget_used() + (net ? optimizer_bytes(net) : 0);
    cdb_budget_end();
    if (!exceeded) return net;
    cdb_network_free(net);
    char largest[256] = "";
    if (big.layer >= 0)
        snprintf(largest, sizeof(largest), "; the largest part, layer %d [%s] at line %d, takes %.0f MiB", big.layer,
                 big.type, big.line, big.bytes / 1048576.0);
    cdb_set_error("%s: the network needs more than the memory limit of %.0f MiB (%s; %.0f MiB asked for so far%s): "
                  "lower batch (or raise subdivisions) or the size of that layer, or set -max-memory",
                  cfg->path, limit / 1048576.0, cdb_memory_limit_source(), used / 1048576.0, largest);
    return NULL;
}
