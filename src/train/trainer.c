/* The trainer (trainer.h): its keys of [net], the full build that reads
 * every group of [net], and one optimizer step through the same sequence
 * on the CPU, the GPU and many ranks. */
#include "trainer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "model.h"
#include "optimizer.h"
#include "schedule.h"
#ifdef GPU
#include "cuda_utils.h"
#endif

int cdb_train_config_read(cfg_reader *r, train_config *t)
{
    memset(t, 0, sizeof(*t));
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
    t->label_smoothing = cdb_cfg_float(r, "label_smoothing", 0.f, 0.f, 0.999f);
    /* at most 0.5: converted to label_smoothing = eps K/(K-1), which must not pass 1 */
    t->label_smooth_eps = cdb_cfg_float(r, "label_smooth_eps", 0.f, 0.f, 0.5f);
    if (t->label_smooth_eps > 0 && t->label_smoothing > 0) {
        cdb_cfg_fail(r, "label_smooth_eps", "give label_smoothing (PyTorch's) or label_smooth_eps (Darknet's), not both");
        return -1;
    }
    t->valid_every = cdb_cfg_int(r, "valid_every", 0, 0, 1 << 30);
    t->save_every = cdb_cfg_int(r, "save_every", 0, 0, 1 << 30);
    t->clip_grad_norm = cdb_cfg_float(r, "clip_grad_norm", 0.f, 0.f, 1e6f);
    t->ema = cdb_cfg_int(r, "ema", 0, 0, 1);
    t->ema_decay = cdb_cfg_float(r, "ema_decay", 0.9998f, 0.f, 1.f);
    t->ema_warmup = cdb_cfg_int(r, "ema_warmup", 0, 0, 1);
    if (!r->failed && (t->ema_decay <= 0 || t->ema_decay >= 1)) {
        cdb_cfg_fail(r, "ema_decay", "must be in (0, 1), not %g", t->ema_decay);
        return -1;
    }
    if (!r->failed && !t->ema && (cdb_cfg_has(r, "ema_decay") || cdb_cfg_has(r, "ema_warmup"))) {
        cdb_cfg_fail(r, cdb_cfg_has(r, "ema_decay") ? "ema_decay" : "ema_warmup", "applies with ema=1 only");
        return -1;
    }
    if (r->failed) return -1;
    if (t->max_batches && t->max_epochs) {
        cdb_cfg_fail(r, "max_epochs", "give either max_batches or max_epochs, not both");
        return -1;
    }
    return 0;
}

/* One weight per line of a file (blank lines and # comments skipped). */
static int class_weights_file(cfg_reader *r, const char *path, int classes, float *w)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cdb_cfg_fail(r, "class_weights", "cannot open '%s' (%s): give the weights as a list, or a file with one per "
                                         "line",
                     path, strerror(errno));
        return -1;
    }
    char line[256];
    int n = 0, number = 0;
    while (fgets(line, sizeof(line), f)) {
        number++;
        char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        size_t len = strlen(p);
        while (len && (p[len - 1] == '\n' || p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t')) p[--len] = 0;
        if (!*p || *p == '#') continue;
        if (n == classes) {
            cdb_cfg_fail(r, "class_weights", "'%s' has more than %d weights (line %d): one per class", path, classes,
                         number);
            fclose(f);
            return -1;
        }
        if (cdb_parse_float_strict(p, &w[n])) {
            cdb_cfg_fail(r, "class_weights", "'%s' line %d: '%.40s' is not a number", path, number, p);
            fclose(f);
            return -1;
        }
        n++;
    }
    fclose(f);
    if (n != classes) {
        cdb_cfg_fail(r, "class_weights", "'%s' has %d weights for %d classes", path, n, classes);
        return -1;
    }
    return 0;
}

int cdb_class_weights_read(cfg_reader *r, int classes, float **out)
{
    *out = NULL;
    const char *value = cdb_cfg_str(r, "class_weights", NULL);
    if (!value) return r->failed ? -1 : 0;
    float *w = cdb_xcalloc((size_t)classes + 1, sizeof(float));
    if (!w) {
        cdb_cfg_fail(r, "class_weights", "%s", cdb_last_error());
        return -1;
    }
    int list = strchr("0123456789.+-", value[0]) != NULL;
    if (list) {
        int n = cdb_cfg_float_list(r, "class_weights", w, classes + 1);
        if (n >= 0 && n != classes && !r->failed)
            cdb_cfg_fail(r, "class_weights", "%d weights for %d classes (one per class, in label order)", n, classes);
    } else {
        class_weights_file(r, value, classes, w);
    }
    double sum = 0;
    for (int k = 0; !r->failed && k < classes; k++) {
        if (!isfinite(w[k]) || w[k] < 0)
            cdb_cfg_fail(r, "class_weights", "the weight of class %d is %g: each must be finite and not negative", k, w[k]);
        sum += w[k];
    }
    if (!r->failed && sum <= 0) cdb_cfg_fail(r, "class_weights", "every weight is 0");
    if (r->failed) {
        free(w);
        return -1;
    }
    *out = w;
    return 0;
}

/* Class weights weigh [softmax]'s cross-entropy: the network must end with one. */
static int class_weights_apply(cfg_reader *r, const cdb_network *net)
{
    const cdb_layer *last = &net->layers[net->n - 1];
    if (strcmp(last->ops->name, "softmax")) {
        cdb_cfg_fail(r, "class_weights", "weigh the cross-entropy of a network that ends with [softmax], not [%s] "
                                         "(layer %d)",
                     last->ops->name, net->n - 1);
        return -1;
    }
    return 0;
}

cdb_network *cdb_network_build(cfg_file *cfg)
{
    int is_net = cfg->n > 0 && (!strcmp(cfg->sections[0].type, "net") || !strcmp(cfg->sections[0].type, "network"));
    train_config t = {0};
    if (is_net) { /* the trainer's keys first: the optimizer's state counts against the memory limit */
        cfg_reader r = cdb_cfg_reader_for(cfg, 0, -1);
        if (cdb_train_config_read(&r, &t)) return NULL;
    }
    cdb_network *net = cdb_network_build_model(cfg, t.optimizer == OPT_ADAMW ? 2 : 1);
    if (!net) return NULL;
    cfg_reader r = cdb_cfg_reader_for(cfg, 0, -1);
    input_config in;
    float *weights = NULL;
    int bad = cdb_class_weights_read(&r, net->classes, &weights) || (weights && class_weights_apply(&r, net)) ||
              cdb_input_config_read(&r, &in) || cdb_cfg_check_unused(&r);
    free(weights);
    if (bad) {
        cdb_network_free(net);
        return NULL;
    }
    return net;
}

/* The average's arrays, each a copy of the weights as they are (timm's
 * deepcopy; the first update replaces it anyway). */
static int ema_alloc(cdb_trainer *tr)
{
    cdb_network *net = tr->net;
    int n = 0;
    for (int i = 0; i < net->n; i++) n += net->layers[i].nio;
    tr->ema = cdb_xcalloc((size_t)(n ? n : 1), sizeof(cdb_ema_array));
    if (!tr->ema) return -1;
    tr->n_ema = n;
    cdb_ema_array *e = tr->ema;
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].nio; k++, e++) {
            e->weights = net->layers[i].io[k];
            e->n = net->layers[i].io_size[k];
            e->avg = cdb_xmalloc(e->n ? e->n * sizeof(float) : 1);
            e->raw = cdb_xmalloc(e->n ? e->n * sizeof(float) : 1);
            if (!e->avg || !e->raw) return -1;
            memcpy(e->avg, e->weights, e->n * sizeof(float));
        }
    return 0;
}

double cdb_ema_decay(const train_config *t, int step)
{
    int s = step - 1; /* ModelEmaV3: update_after_step 0 */
    if (s <= 0) return 0.0;
    if (!t->ema_warmup) return t->ema_decay;
    double d = 1 - pow(1 + s, -2.0 / 3.0);
    d = d < t->ema_decay ? d : t->ema_decay;
    return d > 0 ? d : 0;
}

/* After an optimizer step: every array of the average moved towards the
 * weights by 1 - decay, as torch.lerp (the two-sided formula, so that a
 * weight of 1 copies exactly). */
static void ema_update(cdb_trainer *tr)
{
    float w = (float)(1.0 - cdb_ema_decay(&tr->cfg, tr->step));
    for (int a = 0; a < tr->n_ema; a++) {
        const float *m = tr->ema[a].weights;
        float *e = tr->ema[a].avg;
        size_t n = tr->ema[a].n;
#ifdef GPU
        if (tr->net->gpu) {
            cdb_gpu_ema_update(tr->net, e, m, n, w);
            continue;
        }
#endif
        for (size_t j = 0; j < n; j++) {
            float diff = m[j] - e[j];
            e[j] = w < 0.5f ? e[j] + w * diff : m[j] - diff * (1.f - w);
        }
    }
}

int cdb_trainer_ema_swap(cdb_trainer *tr, int in)
{
    cdb_network *net = tr->net;
    (void)net; /* the device's copies, in GPU builds */
    if (!tr->ema) return 0;
#ifdef GPU
    /* the device holds the current weights and average: their host copies first */
    if (in && net->gpu) {
        if (cdb_network_sync_to_host(net)) return -1;
        for (int a = 0; a < tr->n_ema; a++) cdb_gpu_pull(net, tr->ema[a].avg, tr->ema[a].n * sizeof(float));
        if (cdb_gpu_failed()) return -1;
    }
#endif
    for (int a = 0; a < tr->n_ema; a++) {
        cdb_ema_array *e = &tr->ema[a];
        if (in) {
            memcpy(e->raw, e->weights, e->n * sizeof(float));
            memcpy(e->weights, e->avg, e->n * sizeof(float));
        } else {
            memcpy(e->weights, e->raw, e->n * sizeof(float));
        }
    }
#ifdef GPU
    if (net->gpu && cdb_network_sync_to_device(net)) return -1;
#endif
    return 0;
}

void cdb_ema_path(const char *weights_path, char *buf, size_t n)
{
    size_t len = strlen(weights_path);
    if (len > 8 && !strcmp(weights_path + len - 8, ".weights"))
        snprintf(buf, n, "%.*s.ema.weights", (int)(len - 8), weights_path);
    else
        snprintf(buf, n, "%s.ema.weights", weights_path);
}

cdb_trainer *cdb_trainer_new(cdb_network *net)
{
    cdb_trainer *tr = cdb_xcalloc(1, sizeof(*tr));
    if (!tr) return NULL;
    tr->net = net;
    cfg_reader r = cdb_cfg_reader_for(net->settings, 0, -1);
    tr->moments = cdb_xcalloc((size_t)(net->nparams ? net->nparams : 1), sizeof(cdb_moments));
    if (!tr->moments || cdb_train_config_read(&r, &tr->cfg) ||
        cdb_class_weights_read(&r, net->classes, &tr->class_weights) ||
        (tr->class_weights && !(tr->sample_scale = cdb_xcalloc((size_t)net->mini_batch, sizeof(float))))) {
        free(tr->class_weights);
        free(tr->moments);
        free(tr);
        return NULL;
    }
    /* Darknet's 1 - eps and eps/(K-1) is PyTorch's smoothing of eps K/(K-1). */
    if (tr->cfg.label_smooth_eps > 0 && net->classes > 1)
        tr->cfg.label_smoothing = tr->cfg.label_smooth_eps * net->classes / (net->classes - 1);
    /* the step count at 0, the images seen those of the weights (a file's
     * header); cdb_trainer_resume continues both from a checkpoint */
    tr->seen = net->images_seen;
    tr->best_ema_top1 = -1;
    if (tr->cfg.ema && ema_alloc(tr)) {
        cdb_trainer_free(tr);
        return NULL;
    }
    return tr;
}

void cdb_trainer_free(cdb_trainer *tr)
{
    if (!tr) return;
#ifdef GPU
    /* the device twins of the moments go with them (a later array at the
     * same address must not find them) */
    for (int i = 0; tr->net->gpu && i < tr->net->nparams; i++) {
        if (tr->moments[i].m1) cdb_gpu_forget(tr->net, tr->moments[i].m1);
        if (tr->moments[i].m2) cdb_gpu_forget(tr->net, tr->moments[i].m2);
    }
#endif
    cdb_optimizer_free(tr->moments, tr->net->nparams);
    free(tr->moments);
#ifdef GPU
    if (tr->net->gpu && tr->sample_scale) cdb_gpu_forget(tr->net, tr->sample_scale);
#endif
    free(tr->class_weights);
    free(tr->sample_scale);
    for (int a = 0; a < tr->n_ema; a++) {
#ifdef GPU
        if (tr->net->gpu && tr->ema[a].avg) cdb_gpu_forget(tr->net, tr->ema[a].avg);
#endif
        free(tr->ema[a].avg);
        free(tr->ema[a].raw);
    }
    free(tr->ema);
    free(tr->dist.buffer);
    free(tr->forward_seconds);
    free(tr->backward_seconds);
    free(tr);
}

int cdb_trainer_steps(const cdb_trainer *tr) { return tr->step; }

float cdb_trainer_learning_rate(const cdb_trainer *tr) { return cdb_schedule_learning_rate(&tr->cfg, tr->step); }

int cdb_trainer_resolve_length(cdb_trainer *tr, int train_size)
{
    train_config *t = &tr->cfg;
    if (t->max_epochs) {
        /* An epoch is the whole batches of one pass over the training set. */
        long per_epoch = train_size / tr->net->batch;
        long steps = (long)t->max_epochs * (per_epoch > 0 ? per_epoch : 1);
        t->max_batches = (int)(steps < (1L << 30) ? steps : (1L << 30));
    }
    if (!t->max_batches) {
        cdb_set_error("%s: [net] needs max_batches or max_epochs to train", tr->net->cfg_path);
        return -1;
    }
    if (t->burn_in > t->max_batches) t->burn_in = t->max_batches;
    cdb_schedule_resolve(t);
    return 0;
}

int cdb_trainer_enable_profiling(cdb_trainer *tr)
{
    int n = tr->net->n;
    if (!tr->forward_seconds) tr->forward_seconds = cdb_xcalloc((size_t)n, sizeof(double));
    if (!tr->backward_seconds) tr->backward_seconds = cdb_xcalloc((size_t)n, sizeof(double));
    if (!tr->forward_seconds || !tr->backward_seconds) return -1;
    tr->profile = 1;
    return 0;
}

void cdb_trainer_reset_profile(cdb_trainer *tr)
{
    if (!tr->profile) return;
    memset(tr->forward_seconds, 0, (size_t)tr->net->n * sizeof(double));
    memset(tr->backward_seconds, 0, (size_t)tr->net->n * sizeof(double));
    tr->update_seconds = tr->dropback_seconds = tr->comm_seconds = 0;
}

static void zero_gradients(cdb_network *net)
{
    for (int i = 0; i < net->nparams; i++) {
        cdb_param *p = net->params[i];
#ifdef GPU
        if (net->gpu) {
            cdb_gpu_zero(net, p->grad, p->size * sizeof(float));
            continue;
        }
#endif
        memset(p->grad, 0, p->size * sizeof(float));
    }
}

/* Subdivision s of the step's batch into the network's input and targets
 * (label smoothing spreads eps over the classes). With a mix (mixup or
 * cutmix: `partners` the labels the images were mixed with, `lam` the own
 * label's weight), timm's mixup_target: lam y + (1 - lam) y', each a
 * one-hot smoothed to 1 - eps + eps/K and eps/K. */
static void load_subdivision(cdb_network *net, const float *images, const int *labels, int s, float eps,
                             const int *partners, float lam)
{
    size_t first = (size_t)s * net->mini_batch;
    memcpy(net->input, images + first * net->inputs, (size_t)net->mini_batch * net->inputs * sizeof(float));
    int K = net->classes;
    for (int b = 0; b < net->mini_batch; b++) {
        float *t = net->truth + (size_t)b * K;
        if (partners) {
            float off = eps / K, on = 1.f - eps + off, other = (float)(1.0 - (double)lam);
            int y = labels[first + b], y2 = partners[first + b];
            for (int k = 0; k < K; k++) t[k] = (k == y ? on : off) * lam + (k == y2 ? on : off) * other;
            continue;
        }
        for (int k = 0; k < K; k++) t[k] = eps / K;
        t[labels[first + b]] += 1.f - eps;
    }
#ifdef GPU
    if (net->gpu) cdb_gpu_push(net, net->truth, (size_t)net->mini_batch * net->classes * sizeof(float));
#endif
}

/* Class weights (PyTorch's CrossEntropyLoss(weight=w), mean reduction):
 * the step's loss is sum_i sum_c w_c t_ic (-log p_ic) / D with D = sum_i
 * w_{y_i} over the whole batch (every subdivision and rank), t the
 * (label-smoothed) targets. Image i's targets become w_c t_ic / S_i, S_i =
 * sum_c w_c t_ic, and its loss and gradient are multiplied by S_i batch / D,
 * so that [softmax]'s mean over the batch is that loss. */
static void weigh_subdivision(cdb_trainer *tr, double denominator)
{
    cdb_network *net = tr->net;
    int K = net->classes;
    for (int b = 0; b < net->mini_batch; b++) {
        float *t = net->truth + (size_t)b * K;
        double s = 0;
        for (int k = 0; k < K; k++) s += (double)tr->class_weights[k] * t[k];
        if (s > 0)
            for (int k = 0; k < K; k++) t[k] = (float)(tr->class_weights[k] * t[k] / s);
        tr->sample_scale[b] = (float)(s * net->batch / denominator);
    }
#ifdef GPU
    if (net->gpu) {
        cdb_gpu_push(net, net->truth, (size_t)net->mini_batch * K * sizeof(float));
        cdb_gpu_push(net, tr->sample_scale, (size_t)net->mini_batch * sizeof(float));
    }
#endif
}

/* nan_policy=skip_step: every gradient finite (a finite loss can still
 * have an infinite gradient) */
static int gradients_finite(cdb_network *net)
{
    for (int i = 0; i < net->nparams; i++) {
        cdb_param *p = net->params[i];
#ifdef GPU
        if (net->gpu) cdb_gpu_pull(net, p->grad, p->size * sizeof(float));
#endif
        for (size_t k = 0; k < p->size; k++)
            if (!isfinite(p->grad[k])) return 0;
    }
    return 1;
}

/* The clock at a phase boundary when profiling (else 0). On the GPU the
 * kernels launched so far are waited for first, so that each phase is
 * charged for its own kernels rather than the next phase that synchronises. */
static double clock_if(const cdb_trainer *tr)
{
    if (!tr->profile) return 0;
#ifdef GPU
    if (tr->net->gpu) cdb_gpu_synchronize();
#endif
    return cdb_now_seconds();
}

/* Clipping by the global norm, as PyTorch's clip_grad_norm_(max_norm): the
 * L2 norm of all gradients together (accumulated in double, tensor by
 * tensor in network order: the same bits on every rank, which hold the
 * same summed gradients), and when max_norm / (norm + 1e-6) is below 1 every
 * gradient multiplied by it. Returns the norm before clipping. */
static double clip_gradients(cdb_trainer *tr)
{
    cdb_network *net = tr->net;
    double sum = 0;
    for (int i = 0; i < net->nparams; i++) {
        const cdb_param *p = net->params[i];
#ifdef GPU
        if (net->gpu) {
            sum += cdb_gpu_sum_squares(net, p->grad, p->size);
            continue;
        }
#endif
        double s = 0;
        for (size_t k = 0; k < p->size; k++) s += (double)p->grad[k] * p->grad[k];
        sum += s;
    }
    double norm = sqrt(sum);
    float coef = (float)(tr->cfg.clip_grad_norm / (norm + 1e-6));
    if (!(coef < 1.f)) return norm; /* within the bound (or not finite: nan_policy and the checks see to it) */
    for (int i = 0; i < net->nparams; i++) {
        cdb_param *p = net->params[i];
#ifdef GPU
        if (net->gpu) {
            cdb_gpu_scale(net, p->grad, p->size, coef);
            continue;
        }
#endif
        for (size_t k = 0; k < p->size; k++) p->grad[k] *= coef;
    }
    return norm;
}

/* The data-parallel sum's hook after each layer's backward (the last
 * subdivision's): the layer's gradients start on their way to the other
 * ranks while the layers below still run. */
static void layer_done(void *ctx, int layer)
{
    cdb_trainer *tr = ctx;
    double t0 = tr->profile ? cdb_now_seconds() : 0;
    cdb_dist_layer_done(tr->net, &tr->dist, layer);
    if (tr->profile) tr->comm_seconds += cdb_now_seconds() - t0;
}

/* One optimizer step, on the CPU or the GPU through the same sequence. */
float cdb_trainer_run_step(cdb_trainer *tr, const float *images, const int *labels)
{
    return cdb_trainer_run_step_mix(tr, images, labels, NULL, 1.f);
}

float cdb_trainer_run_step_mix(cdb_trainer *tr, const float *images, const int *labels, const int *partners, float lam)
{
    cdb_network *net = tr->net;
    tr->step_failed = tr->step_skipped = 0;
    /* 0. The optimizer's state, allocated by the first step. */
    if (cdb_optimizer_prepare(net, tr->moments, &tr->cfg)) {
        tr->step_failed = 1;
        return NAN;
    }
    /* 1. ChannelDropBack: this step's selection and masks. */
    double t0 = clock_if(tr);
    cdb_dropback_begin_step(net, tr->step, tr->cfg.max_batches, &tr->dropback_stats);
    if (tr->profile) tr->dropback_seconds += clock_if(tr) - t0;

    /* 2. Forward and backward per subdivision; the gradients add up (and
     * on several CPU ranks, the last subdivision's backward starts their
     * sum over the ranks, 3.). */
    zero_gradients(net);
#ifdef GPU
    tr->summing_gradients = net->ranks > 1 && !net->gpu;
#else
    tr->summing_gradients = net->ranks > 1;
#endif
    /* clipping's norm is of the whole summed gradient, dropped channels too */
    tr->dist.whole = tr->cfg.clip_grad_norm > 0;
    net->pass = (cdb_pass_context){.step = tr->step,
                                   .forward_seconds = tr->profile ? tr->forward_seconds : NULL,
                                   .backward_seconds = tr->profile ? tr->backward_seconds : NULL};
    /* class weights: the denominator of the weighted mean, over the batch of every rank */
    double denominator = 0;
    if (tr->class_weights) {
        /* soft (mixed) targets: PyTorch's mean over the images, as for probability targets */
        for (int i = 0; !partners && i < net->subdivisions * net->mini_batch; i++)
            denominator += tr->class_weights[labels[i]];
        if (partners) denominator = net->batch;
        if (!partners && net->ranks > 1 && cdb_dist_sum_doubles(&denominator, 1)) {
            tr->step_failed = 1;
            return NAN;
        }
        net->pass.sample_scale = tr->sample_scale;
    }
    double loss = 0;
    for (int s = 0; s < net->subdivisions; s++) {
        net->pass.subdivision = s;
        load_subdivision(net, images, labels, s, tr->cfg.label_smoothing, partners, lam);
        if (tr->class_weights) weigh_subdivision(tr, denominator);
        net->loss = 0;
        cdb_network_forward(net, 1);
        if (tr->summing_gradients && s == net->subdivisions - 1) {
            if (cdb_dist_begin_gradients(net, &tr->dist)) net->pass_failed = 1;
            net->pass.layer_done = layer_done;
            net->pass.ctx = tr;
        }
        cdb_network_backward(net);
        loss += net->loss;
    }
    net->pass = (cdb_pass_context){.step = tr->step};
    /* a failure inside the passes (out of memory, a CUDA error): recorded,
     * and the weights are left untouched; on several ranks every rank
     * learns of it, and of the loss of the whole batch (the sum of theirs) */
    double state[2] = {loss, cdb_network_pass_failed(net) ? 1.0 : 0.0};
    if (net->ranks > 1 && cdb_dist_sum_doubles(state, 2)) {
        tr->step_failed = 1;
        return NAN;
    }
    float mean_loss = (float)(state[0] / net->batch);
    int finite = isfinite(mean_loss);
    /* 3. Data-parallel runs: the gradients summed over the ranks (each
     * rank's already divided by the whole batch), the same bits on all: the
     * buckets the backward pass started, finished (and used only when the
     * step goes on), or on GPU ranks the sum of them all now. */
    if (net->ranks > 1) {
        t0 = clock_if(tr);
        int bad = tr->summing_gradients ? cdb_dist_finish_gradients(net, &tr->dist, finite && state[1] == 0)
                                        : (finite && state[1] == 0 ? cdb_dist_sum_gradients(net, &tr->dist) : 0);
        tr->summing_gradients = 0;
        if (tr->profile) tr->comm_seconds += clock_if(tr) - t0;
        if (bad) {
            tr->step_failed = 1;
            return NAN;
        }
    }
    if (state[1] != 0) {
        if (!cdb_network_pass_failed(net)) cdb_set_error("the step failed on another rank (its output says why)");
        tr->step_failed = 1;
        return NAN;
    }
    if (finite && tr->cfg.nan_policy == 1) finite = gradients_finite(net);
    if (!finite) {
        tr->step_skipped = tr->cfg.nan_policy == 1;
        if (tr->step_skipped) { /* the step is spent, its update dropped */
            tr->skipped_steps++;
            tr->step++;
            tr->seen += (uint64_t)net->batch;
            net->images_seen = tr->seen;
        }
        return NAN; /* weights untouched */
    }

    /* 4. Clipping by the global norm (clip_grad_norm=), after the sum over
     * the ranks and before the masks: the reference's clip_grad_norm_
     * followed by its optimizer, which masks. Then the masks, on the summed
     * gradient. */
    t0 = clock_if(tr);
    tr->grad_norm = tr->cfg.clip_grad_norm > 0 ? clip_gradients(tr) : 0;
    cdb_dropback_apply_masks(net);
    double t1 = clock_if(tr);
    if (tr->profile) tr->dropback_seconds += t1 - t0;

    /* 5. The optimizer, at this step's learning rate. */
    float lr = cdb_schedule_learning_rate(&tr->cfg, tr->step);
    tr->step++;
    cdb_optimizer_update(net, tr->moments, &tr->cfg, lr, tr->step);
#ifdef GPU
    if (cdb_network_pass_failed(net)) { /* the update's kernels */
        tr->step_failed = 1;
        return NAN;
    }
#endif
    if (tr->profile) tr->update_seconds += clock_if(tr) - t1;

    /* 6. Counters (the draw counted the dropback statistics); the weights
     * now carry the images they were trained on (a weights file's header). */
    tr->seen += (uint64_t)net->batch;
    net->images_seen = tr->seen;
    /* 7. The moving average of the weights as the update left them */
    if (tr->ema) ema_update(tr);
    return mean_loss;
}

void cdb_network_print_summary(const cdb_network *net, FILE *out)
{
    train_config tc;
    cfg_reader r = cdb_cfg_reader_for(net->settings, 0, -1);
    if (cdb_train_config_read(&r, &tc)) memset(&tc, 0, sizeof(tc)); /* read when the network was built: cannot fail */
    fprintf(out, "%5s %-14s %-34s %16s %16s %10s %s\n", "layer", "type", "details", "input", "output", "params",
            "dropback");
    size_t total = 0;
    for (int i = 0; i < net->n; i++) {
        const cdb_layer *l = &net->layers[i];
        size_t count = 0;
        const char *db = "-";
        for (int k = 0; k < l->nparams; k++) {
            count += l->params[k].size;
            if (l->params[k].eligible) db = cdb_dropback_takes_part(&l->params[k]) ? "yes" : "no";
        }
        total += count;
        char in[32], outs[32];
        if (l->tokens)
            snprintf(in, sizeof(in), "%d tok x %d", l->tokens, l->c);
        else
            snprintf(in, sizeof(in), "%dx%dx%d", l->c, l->h, l->w);
        if (l->out_tokens)
            snprintf(outs, sizeof(outs), "%d tok x %d", l->out_tokens, l->out_c);
        else
            snprintf(outs, sizeof(outs), "%dx%dx%d", l->out_c, l->out_h, l->out_w);
        char rate[32] = "";
        for (int k = 0; k < l->nparams; k++)
            if (cdb_dropback_takes_part(&l->params[k]))
                snprintf(rate, sizeof(rate), " (p=%.2f)", cdb_dropback_channel_rate(&l->params[k]));
        fprintf(out, "%5d %-14s %-34s %16s %16s %10zu %s%s\n", i, l->ops->name, l->description, in, outs, count, db,
                rate);
    }
    size_t macs = 0;
    for (int i = 0; i < net->n; i++) macs += net->layers[i].flops;
    fprintf(out, "total parameters: %zu\n", total);
    fprintf(out, "forward: %.4g G multiply-adds per image (convolutions, connected and attention layers)\n", macs / 1e9);
    const train_config *t = &tc;
    fprintf(out, "semantics: %s: burn_in %s, weight decay %s biases and norm scales, batch norm momentum %g\n",
            t->darknet ? "Darknet's (darknet=1)" : "the reference's (PyTorch)",
            t->darknet ? "lr*(step/burn_in)^power" : "linear", t->decay_norm_bias ? "on" : "not on",
            t->darknet ? BN_MOMENTUM_DARKNET : BN_MOMENTUM);
    if (net->gpu) {
        int on_host = 0;
        for (int i = 0; i < net->n; i++)
            if (!net->layers[i].ops->forward_gpu || !net->layers[i].ops->backward_gpu) {
                if (!on_host++) fprintf(out, "on the CPU (no CUDA code for the type; copies to and from the device):");
                fprintf(out, " %d [%s]", i, net->layers[i].ops->name);
            }
        if (on_host) fprintf(out, "\n");
    }
}

