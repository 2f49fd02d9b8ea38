/* From a parsed cfg to a network: [net] settings, then one layer per
 * section, each reading and checking its own keys. */
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "dist.h"
#include "layers.h"
#include "model.h"
#include "network.h"


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
    net->darknet = cdb_cfg_int(r, "darknet", 0, 0, 1);
    net->seed = (uint64_t)cdb_cfg_int(r, "seed", 1, 0, 2147483647);
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
    if ((long)net->w * net->h * net->c > (1L << 30)) {
        cdb_cfg_fail(r, NULL, "the input (%d x %d x %d) is too large", net->w, net->h, net->c);
        return -1;
    }
    net->mini_batch = net->batch / (net->subdivisions * net->ranks);
    net->inputs = net->w * net->h * net->c;
    return 0;
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
    net->settings = cdb_cfg_copy_section(cfg, 0);
    if (!net->settings) goto out_of_memory;
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

/* Optimizer state the first step allocates: `copies` floats per parameter
 * (momentum for SGD, two moments for AdamW). */
static size_t optimizer_bytes(const cdb_network *net, int copies)
{
    size_t floats = 0;
    for (int i = 0; i < net->nparams; i++) floats += net->params[i]->size;
    return floats * sizeof(float) * (size_t)copies;
}

cdb_network *cdb_network_build_model(cfg_file *cfg, int optimizer_copies)
{
    cdb_reset_failed_allocations();
    size_t limit = cdb_memory_limit();
    largest_request big = {0, -1, 0, NULL};
    cdb_budget_begin(limit);
    cdb_network *net = build(cfg, &big);
    int exceeded = cdb_budget_exceeded() || (net && limit && cdb_budget_used() + optimizer_bytes(net, optimizer_copies) > limit);
    size_t used = cdb_budget_used() + (net ? optimizer_bytes(net, optimizer_copies) : 0);
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
