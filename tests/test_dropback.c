/* What docs/dropback.md says the tests check of ChannelDropBack, plus the
 * extras (strict mode, out axis, single policy). */
#include <float.h>
#include <stdlib.h>

#include "dropback.h"
#include "conv_direct.h"
#include "convolutional_layer.h"
#include "test.h"

#define BASE_NET                                                                                                  \
    "[net]\nbatch=4\nwidth=6\nheight=6\nchannels=2\nlearning_rate=0.1\nmomentum=0\ndecay=0\nseed=3\nmax_batches=10\n"
#define BASE_LAYERS                                                                                               \
    "[convolutional]\nfilters=6\nsize=3\npad=1\nactivation=relu\n"                                                \
    "[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nbatch_normalize=1\nactivation=relu\n"                   \
    "[connected]\noutput=5\nactivation=linear\n[softmax]\n"
#define ALWAYS "channel_dropback=1\ndropback_layer_rate=1\ndropback_layer_rate_init=1\ndropback_skip=0\n"

static void batch_data(const cdb_network *net, int step, float *images, int *labels)
{
    fill_normal(images, (size_t)net->batch * net->inputs, 100 + (uint64_t)step, 1.f);
    for (int b = 0; b < net->batch; b++) labels[b] = (b + step) % net->classes;
}

static void train_steps(cdb_network *net, int steps)
{
    float *images = malloc((size_t)net->batch * net->inputs * sizeof(float));
    int *labels = malloc((size_t)net->batch * sizeof(int));
    for (int s = 0; s < steps; s++) {
        batch_data(net, trainer_of(net)->step, images, labels);
        cdb_trainer_run_step(trainer_of(net), images, labels);
    }
    free(images);
    free(labels);
}

static int same_params(const cdb_network *a, const cdb_network *b)
{
    if (a->nparams != b->nparams) return 0;
    for (int i = 0; i < a->nparams; i++)
        if (memcmp(a->params[i]->value, b->params[i]->value, a->params[i]->size * sizeof(float))) return 0;
    return 1;
}

static float **copy_values(const cdb_network *net)
{
    float **v = calloc((size_t)(unsigned)net->nparams, sizeof(float *));
    for (int i = 0; i < net->nparams; i++) {
        v[i] = malloc(net->params[i]->size * sizeof(float));
        memcpy(v[i], net->params[i]->value, net->params[i]->size * sizeof(float));
    }
    return v;
}

static void free_values(float **v, int n)
{
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* Spec: r = 1, channel_rate = 0.5, momentum 0, decay 0, one step: each input
 * channel's change is exactly 0 or the undropped change / keep. */
/* Every eligible tensor selected (r = 1): a dropped channel (or row, on the
 * out axis) neither changes nor has a gradient; a kept one has g / keep and
 * changes by the unmasked change / keep. */
static void mask_scaling_case(const char *cfg, int expected_tensors)
{
    cdb_network *a = net_from_text(cfg), *b = net_from_text(cfg);
    CHECK(a && b, "build");
    cdb_dropback_disable(b);
    float **w0 = copy_values(a);
    train_steps(a, 1);
    train_steps(b, 1);
    int dropped_seen = 0, kept_seen = 0, tensors = 0;
    for (int i = 0; i < a->nparams; i++) {
        cdb_param *pa = a->params[i], *pb = b->params[i];
        if (!pa->eligible) continue;
        tensors++;
        CHECK(cdb_dropback_selected(pa), "eligible tensor %d not selected at r = 1", i);
        for (int r = 0; r < pa->rows; r++)
            for (int c = 0; c < pa->channels; c++)
                for (int k = 0; k < pa->inner; k++) {
                    size_t e = ((size_t)r * pa->channels + c) * pa->inner + k;
                    float change = pa->value[e] - w0[i][e];
                    float base_change = pb->value[e] - w0[i][e];
                    int m = a->dropback.axis == DROPBACK_AXIS_OUT ? r : c; /* the mask's axis */
                    if (cdb_dropback_mask(pa)[m]) {
                        dropped_seen++;
                        CHECK(change == 0.f, "tensor %d channel %d dropped but changed by %g", i, c, change);
                        CHECK(pa->grad[e] == 0.f, "dropped gradient not zero");
                    } else {
                        kept_seen++;
                        CHECK(pa->grad[e] == pb->grad[e] / cdb_dropback_keep(pa), "tensor %d (%s) element %zu: kept gradient %g is not %g / %g", i, pa->name, e, pa->grad[e], pb->grad[e], cdb_dropback_keep(pa));
                        /* each update rounds to the weights' precision */
                        float want = base_change / cdb_dropback_keep(pa), ulp = 2 * FLT_EPSILON * (fabsf(w0[i][e]) + fabsf(pa->value[e]));
                        CHECK(fabsf(change - want) <= 1e-5f * fabsf(want) + 1e-7f + ulp,
                              "tensor %d channel %d: change %g, expected %g / %g", i, c, change, base_change, cdb_dropback_keep(pa));
                    }
                }
    }
    CHECK(tensors == expected_tensors, "expected %d eligible tensors, got %d", expected_tensors, tensors);
    CHECK(dropped_seen > 0 && kept_seen > 0, "the draw must drop some channels and keep others (%d/%d)", dropped_seen,
          kept_seen);
    free_values(w0, a->nparams);
    free_net(a);
    free_net(b);
}

static void t_mask_scaling(void) { mask_scaling_case(BASE_NET ALWAYS "dropback_channel_rate=0.5\n" BASE_LAYERS, 3); }

/* The zoo's eligible tensors on their own paths, both axes: a 1x1
 * convolution on 256 pixels (a GEMM per image), a depthwise one (plane by
 * plane), the squeeze-and-excitation 1x1 convolutions with biases, a 1x1
 * without bias, the classifier. */
static void t_mask_scaling_zoo_paths(void)
{
    const char *axes[] = {"in", "out"};
    for (int a = 0; a < 2; a++) {
        char cfg[2048];
        snprintf(cfg, sizeof(cfg),
                 "[net]\nbatch=4\nwidth=16\nheight=16\nchannels=4\nlearning_rate=0.1\nmomentum=0\ndecay=0\nseed=3\n"
                 "max_batches=10\n" ALWAYS "dropback_channel_rate=0.5\ndropback_axis=%s\n"
                 "[convolutional]\nfilters=8\nsize=1\nactivation=relu\n"
                 "[convolutional]\nfilters=8\nsize=3\npad=1\ngroups=8\nbatch_normalize=1\nactivation=relu\n"
                 "[avgpool]\n[convolutional]\nfilters=2\nsize=1\nactivation=swish\n"
                 "[convolutional]\nfilters=8\nsize=1\nactivation=logistic\n[scale_channels]\nfrom=-4\n"
                 "[convolutional]\nfilters=4\nsize=1\nbias=0\nactivation=linear\n"
                 "[avgpool]\n[connected]\noutput=5\nactivation=linear\n[softmax]\n",
                 axes[a]);
        int before = test_failed();
        mask_scaling_case(cfg, 6);
        CHECK(test_failed() == before, "axis %s", axes[a]);
    }
}

/* Spec: channel_dropback=0 on the net is bit-identical to no dropback keys;
 * so are -nodropback and channel_dropback=0 on every layer. */
static void t_off_is_bit_identical(void)
{
    cdb_network *plain = net_from_text(BASE_NET BASE_LAYERS);
    cdb_network *off = net_from_text(BASE_NET "channel_dropback=0\ndropback_layer_rate=1\ndropback_channel_rate=0.5\n"
                                              "dropback_skip=0\ndropback_mode=strict\n" BASE_LAYERS);
    cdb_network *flag = net_from_text(BASE_NET ALWAYS BASE_LAYERS);
    cdb_network *per_layer = net_from_text(BASE_NET ALWAYS
                                           "[convolutional]\nfilters=6\nsize=3\npad=1\nactivation=relu\nchannel_dropback=0\n"
                                           "[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nbatch_normalize=1\n"
                                           "activation=relu\nchannel_dropback=0\n"
                                           "[connected]\noutput=5\nactivation=linear\nchannel_dropback=0\n[softmax]\n");
    cdb_network *on = net_from_text(BASE_NET ALWAYS BASE_LAYERS);
    CHECK(plain && off && flag && per_layer && on, "build");
    cdb_dropback_disable(flag);
    train_steps(plain, 3);
    train_steps(off, 3);
    train_steps(flag, 3);
    train_steps(per_layer, 3);
    train_steps(on, 3);
    CHECK(same_params(plain, off), "channel_dropback=0 differs from a cfg without dropback keys");
    CHECK(same_params(plain, flag), "-nodropback differs from a cfg without dropback keys");
    CHECK(same_params(plain, per_layer), "per-layer channel_dropback=0 differs from no dropback");
    CHECK(!same_params(plain, on), "dropback at r=1 changed nothing: the comparison would be vacuous");
    free_net(plain);
    free_net(off);
    free_net(flag);
    free_net(per_layer);
    free_net(on);
}

/* Spec: ineligible tensors and skipped layers never change pattern: after
 * one step they are bit-identical to the run without dropback. */
static void t_ineligible_and_skipped_untouched(void)
{
    const char *cfg = BASE_NET "channel_dropback=1\ndropback_layer_rate=1\ndropback_layer_rate_init=1\ndropback_skip=1\n"
                               "dropback_channel_rate=0.5\n" BASE_LAYERS;
    cdb_network *a = net_from_text(cfg), *b = net_from_text(cfg);
    CHECK(a && b, "build");
    cdb_dropback_disable(b);
    train_steps(a, 1);
    train_steps(b, 1);
    int eligible = 0, changed = 0;
    for (int i = 0; i < a->nparams; i++) {
        cdb_param *pa = a->params[i];
        int same = !memcmp(pa->value, b->params[i]->value, pa->size * sizeof(float));
        if (!pa->eligible) {
            CHECK(same && !cdb_dropback_takes_part(pa) && !cdb_dropback_selected(pa), "ineligible tensor %d (%s) was masked", i, pa->name);
            continue;
        }
        if (eligible++ == 0) {
            CHECK(!cdb_dropback_takes_part(pa) && same, "the first eligible tensor is inside dropback_skip=1 but was masked");
        } else {
            CHECK(cdb_dropback_takes_part(pa) && cdb_dropback_selected(pa), "eligible tensor %d not selected at r = 1", i);
            changed += !same;
        }
    }
    CHECK(changed == 2, "both selectable tensors should differ from the baseline, %d did", changed);
    free_net(a);
    free_net(b);
}

/* Per-layer channel_dropback=1 forces a layer in even inside the skipped
 * prefix; =0 excludes one outside it; dropback_channel_rate overrides. */
static void t_per_layer_overrides(void)
{
    cdb_network *net = net_from_text(
        BASE_NET "channel_dropback=1\ndropback_skip=1\n"
                 "[convolutional]\nfilters=6\nsize=3\npad=1\nactivation=relu\nchannel_dropback=1\ndropback_channel_rate=0.7\n"
                 "[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nbatch_normalize=1\nactivation=relu\nchannel_dropback=0\n"
                 "[connected]\noutput=5\nactivation=linear\n[softmax]\n");
    CHECK(net, "build");
    cdb_param *w[3];
    int n = 0;
    for (int i = 0; i < net->nparams; i++)
        if (net->params[i]->eligible) w[n++] = net->params[i];
    CHECK(n == 3, "3 eligible tensors expected");
    CHECK(cdb_dropback_takes_part(w[0]) && fabsf(cdb_dropback_channel_rate(w[0]) - 0.7f) < 1e-7f, "forced-in layer or its rate");
    CHECK(!cdb_dropback_takes_part(w[1]), "channel_dropback=0 layer takes part");
    CHECK(cdb_dropback_takes_part(w[2]) && fabsf(cdb_dropback_channel_rate(w[2]) - 0.3f) < 1e-7f, "default layer or default rate");
    free_net(net);
    /* An [attention] layer's keys apply to both of its weights. */
    net = net_from_text(BASE_NET "channel_dropback=1\ndropback_skip=0\n"
                                 "[convolutional]\nfilters=4\nsize=2\nstride=2\nactivation=linear\n[tokens]\n"
                                 "[attention]\nheads=2\ndropback_channel_rate=0.6\n"
                                 "[attention]\nheads=2\nchannel_dropback=0\n"
                                 "[token_pool]\n[connected]\noutput=5\nactivation=linear\n[softmax]\n");
    CHECK(net, "build attention net");
    cdb_param *a[2][2] = {{&net->layers[2].params[0], &net->layers[2].params[2]},
                          {&net->layers[3].params[0], &net->layers[3].params[2]}};
    for (int k = 0; k < 2; k++) {
        CHECK(a[0][k]->eligible && cdb_dropback_takes_part(a[0][k]) && fabsf(cdb_dropback_channel_rate(a[0][k]) - 0.6f) < 1e-7f,
              "attention weight %d: rate override", k);
        CHECK(a[1][k]->eligible && !cdb_dropback_takes_part(a[1][k]), "attention weight %d: channel_dropback=0", k);
    }
    free_net(net);
}

/* Fake eligible tensors for statistical tests of the draw. */
static cdb_param *fake_params(int n, int channels, float channel_rate, cdb_param **list)
{
    cdb_param *p = calloc((size_t)n, sizeof(cdb_param));
    for (int i = 0; i < n; i++) {
        p[i].eligible = 1;
        p[i].rows = 2;
        p[i].channels = channels;
        p[i].inner = 1;
        cdb_dropback_attach(&p[i]);
        cdb_dropback_configure(&p[i], -1, channel_rate);
        list[i] = &p[i];
    }
    return p;
}

static void free_fake(cdb_param *p, int n)
{
    for (int i = 0; i < n; i++) cdb_dropback_detach(&p[i]);
    free(p);
}

/* Spec: over many steps the selection frequency and dropped fraction match
 * r and channel_rate (binomial tolerance), and the schedule switches at the
 * milestones. */
static void t_statistics_and_schedule(void)
{
    enum { N = 8, C = 40, STEPS = 3000 };
    dropback_config cfg;
    cdb_dropback_config_defaults(&cfg);
    cfg.enabled = 1;
    cfg.skip = 0;
    cfg.layer_rate = 0.6f;
    cfg.layer_rate_init = 0.1f;
    cdb_param *list[N];
    cdb_param *p = fake_params(N, C, 0.3f, list);
    cdb_dropback_resolve(&cfg, list, N);
    CHECK(cdb_dropback_layer_rate(&cfg, 899, STEPS) == 0.1f && cdb_dropback_layer_rate(&cfg, 900, STEPS) == 0.3f,
          "first milestone must switch at step 900 of 3000");
    CHECK(cdb_dropback_layer_rate(&cfg, 1799, STEPS) == 0.3f && cdb_dropback_layer_rate(&cfg, 1800, STEPS) == 0.6f,
          "second milestone must switch at step 1800 of 3000");
    long selected[3] = {0}, trials[3] = {0};
    double dropped = 0;
    long selections = 0;
    dropback_stats stats = {0};
    long per_tensor[N] = {0}, drops[N][C] = {{0}};
    double kept[N] = {0};
    for (int s = 0; s < STEPS; s++) {
        int stage = s < 900 ? 0 : (s < 1800 ? 1 : 2);
        selected[stage] += cdb_dropback_draw(&cfg, list, N, 42, s, STEPS, &stats);
        trials[stage] += N;
        for (int i = 0; i < N; i++)
            if (cdb_dropback_selected(list[i])) {
                dropped += 1 - cdb_dropback_keep(list[i]);
                selections++;
                per_tensor[i]++;
                kept[i] += cdb_dropback_keep(list[i]);
                for (int c = 0; c < C; c++) drops[i][c] += cdb_dropback_mask(list[i])[c];
            }
    }
    /* the per-tensor counters of the run's dropback report, recounted here */
    for (int i = 0; i < N; i++) {
        dropback_tensor_stats st;
        CHECK(cdb_dropback_tensor_stats(list[i], &st) && st.mask_channels == C, "tensor %d: no statistics", i);
        CHECK(st.draws == STEPS && st.selected == per_tensor[i], "tensor %d: %ld draws, %ld selected (want %d, %ld)", i,
              st.draws, st.selected, STEPS, per_tensor[i]);
        CHECK(fabs(st.kept_sum - kept[i]) < 1e-9 * STEPS, "tensor %d: kept sum %g, want %g", i, st.kept_sum, kept[i]);
        for (int c = 0; c < C; c++)
            CHECK(st.drop_count[c] == drops[i][c], "tensor %d channel %d dropped %u times, counted %ld", i, c,
                  st.drop_count[c], drops[i][c]);
    }
    const double rates[3] = {0.1, 0.3, 0.6};
    for (int k = 0; k < 3; k++) {
        double freq = (double)selected[k] / trials[k];
        double sigma = sqrt(rates[k] * (1 - rates[k]) / trials[k]);
        CHECK(fabs(freq - rates[k]) < 5 * sigma, "stage %d: selection frequency %.4f, expected %.2f (+-%.4f)", k, freq,
              rates[k], 5 * sigma);
    }
    double mean_drop = dropped / selections, sigma = sqrt(0.3 * 0.7 / ((double)selections * C));
    CHECK(fabs(mean_drop - 0.3) < 5 * sigma, "mean dropped fraction %.4f, expected 0.3 (+-%.4f)", mean_drop, 5 * sigma);
    CHECK(stats.steps == STEPS && stats.selected == selections, "statistics count steps and selections");
    CHECK(fabs(stats.dropped_fraction - dropped) < 1e-6 * dropped, "statistics sum the dropped fraction");
    double expected = N * (900 * 0.1 + 900 * 0.3 + 1200 * 0.6);
    CHECK(fabs(stats.expected_selected - expected) < 1e-3 * expected, "expected selections %.1f, want %.1f",
          stats.expected_selected, expected);
    free_fake(p, N);
}

/* Extra policy `single`: with probability r exactly one tensor, uniform. */
static void t_single_policy(void)
{
    enum { N = 5, STEPS = 4000 };
    dropback_config cfg;
    cdb_dropback_config_defaults(&cfg);
    cfg.enabled = 1;
    cfg.skip = 0;
    cfg.layer_rate = cfg.layer_rate_init = 0.5f;
    cfg.milestones[0] = cfg.milestones[1] = 0.f; /* r = layer_rate throughout */
    cfg.policy = DROPBACK_POLICY_SINGLE;
    cdb_param *list[N];
    cdb_param *p = fake_params(N, 10, 0.3f, list);
    cdb_dropback_resolve(&cfg, list, N);
    long per_tensor[N] = {0}, steps_with_one = 0;
    for (int s = 0; s < STEPS; s++) {
        int k = cdb_dropback_draw(&cfg, list, N, 9, s, STEPS, NULL);
        CHECK(k == 0 || k == 1, "single policy selected %d tensors", k);
        steps_with_one += k;
        for (int i = 0; i < N; i++) per_tensor[i] += cdb_dropback_selected(list[i]);
    }
    double freq = (double)steps_with_one / STEPS, sigma = sqrt(0.25 / STEPS);
    CHECK(fabs(freq - 0.5) < 5 * sigma, "a tensor is selected in %.3f of steps, expected 0.5", freq);
    for (int i = 0; i < N; i++) {
        double share = (double)per_tensor[i] / steps_with_one, s2 = sqrt(0.2 * 0.8 / steps_with_one);
        CHECK(fabs(share - 0.2) < 5 * s2, "tensor %d chosen in %.3f of selections, expected 0.2", i, share);
    }
    free_fake(p, N);
}

/* Spec step 4: if every channel would be dropped, nothing is. */
static void t_all_dropped_means_none(void)
{
    dropback_config cfg;
    cdb_dropback_config_defaults(&cfg);
    cfg.enabled = 1;
    cfg.skip = 0;
    cfg.layer_rate = cfg.layer_rate_init = 1.f;
    cdb_param *list[1];
    cdb_param *p = fake_params(1, 6, 1.0f, list);
    cdb_dropback_resolve(&cfg, list, 1);
    cdb_dropback_draw(&cfg, list, 1, 1, 0, 10, NULL);
    CHECK(cdb_dropback_selected(p) && cdb_dropback_keep(p) == 1.f, "keep must be 1 when k would be 0");
    for (int c = 0; c < 6; c++) CHECK(!cdb_dropback_mask(p)[c], "channel %d dropped", c);
    free_fake(p, 1);
}

/* The masks of step s depend only on (seed, s): a resumed run draws the same. */
static void t_masks_resume(void)
{
    dropback_config cfg;
    cdb_dropback_config_defaults(&cfg);
    cfg.enabled = 1;
    cfg.skip = 0;
    cfg.layer_rate = cfg.layer_rate_init = 1.f; /* every tensor selected: masks to compare */
    cdb_param *la[3], *lb[3];
    cdb_param *a = fake_params(3, 16, 0.3f, la), *b = fake_params(3, 16, 0.3f, lb);
    cdb_dropback_resolve(&cfg, la, 3);
    cdb_dropback_resolve(&cfg, lb, 3);
    for (int s = 0; s <= 50; s++) cdb_dropback_draw(&cfg, la, 3, 77, s, 60, NULL);
    cdb_dropback_draw(&cfg, lb, 3, 77, 50, 60, NULL);
    for (int i = 0; i < 3; i++) {
        CHECK(cdb_dropback_selected(la[i]) == cdb_dropback_selected(lb[i]) && cdb_dropback_keep(la[i]) == cdb_dropback_keep(lb[i]), "selection differs");
        CHECK(cdb_dropback_selected(la[i]), "r = 1 must select");
        CHECK(!memcmp(cdb_dropback_mask(la[i]), cdb_dropback_mask(lb[i]), 16), "mask differs");
    }
    free_fake(a, 3);
    free_fake(b, 3);
}

/* Reference (grad) mode: weight decay and momentum are not masked, so a
 * dropped channel still decays. */
static void t_decay_not_masked(void)
{
    const char *cfg = "[net]\nbatch=4\nwidth=6\nheight=6\nchannels=2\nlearning_rate=0.1\nmomentum=0\ndecay=0.1\n"
                      "seed=3\nmax_batches=10\n" ALWAYS "dropback_channel_rate=0.5\n" BASE_LAYERS;
    cdb_network *net = net_from_text(cfg);
    CHECK(net, "build");
    float **w0 = copy_values(net);
    train_steps(net, 1);
    int checked = 0;
    for (int i = 0; i < net->nparams; i++) {
        cdb_param *p = net->params[i];
        if (!cdb_dropback_selected(p)) continue;
        for (size_t e = 0; e < p->size; e++) {
            if (!cdb_dropback_mask(p)[dropback_channel_of(p, DROPBACK_AXIS_IN, e)]) continue;
            float d = 0.f + 0.1f * w0[i][e];
            float want = w0[i][e] - 0.1f * d;
            CHECK(p->value[e] == want, "dropped weight should only decay: %g vs %g", p->value[e], want);
            checked++;
        }
    }
    CHECK(checked > 0, "no dropped channel to check");
    free_values(w0, net->nparams);
    free_net(net);
}

/* Extra `strict` mode: a dropped channel gets no update at all (no decay,
 * no momentum step, momentum buffer kept). Step 0 runs at r = 0 to fill the
 * momentum buffers; step 1 at r = 1. */
static void t_strict_mode(void)
{
    const char *cfg = "[net]\nbatch=4\nwidth=6\nheight=6\nchannels=2\nlearning_rate=0.1\nmomentum=0.9\ndecay=0.01\n"
                      "seed=3\nmax_batches=2\nchannel_dropback=1\ndropback_layer_rate=1\ndropback_layer_rate_init=0\n"
                      "dropback_milestones=0.5,0.5\ndropback_skip=0\ndropback_channel_rate=0.5\ndropback_mode=strict\n" BASE_LAYERS;
    cdb_network *net = net_from_text(cfg);
    CHECK(net, "build");
    train_steps(net, 1);
    for (int i = 0; i < net->nparams; i++) CHECK(!cdb_dropback_selected(net->params[i]), "step 0 must run at r = 0");
    float **w1 = copy_values(net);
    float **m1 = calloc((size_t)(unsigned)net->nparams, sizeof(float *));
    for (int i = 0; i < net->nparams; i++) {
        m1[i] = malloc(net->params[i]->size * sizeof(float));
        memcpy(m1[i], trainer_of(net)->moments[i].m1, net->params[i]->size * sizeof(float));
    }
    train_steps(net, 1);
    int frozen = 0, moved = 0;
    for (int i = 0; i < net->nparams; i++) {
        cdb_param *p = net->params[i];
        if (!p->eligible) continue;
        CHECK(cdb_dropback_selected(p), "step 1 must select every eligible tensor");
        for (size_t e = 0; e < p->size; e++) {
            if (cdb_dropback_mask(p)[dropback_channel_of(p, DROPBACK_AXIS_IN, e)]) {
                CHECK(p->value[e] == w1[i][e] && trainer_of(net)->moments[i].m1[e] == m1[i][e], "dropped element %zu of tensor %d moved", e, i);
                frozen++;
            } else {
                moved += p->value[e] != w1[i][e];
            }
        }
    }
    CHECK(frozen > 0 && moved > 0, "need frozen (%d) and moving (%d) elements", frozen, moved);
    free_values(w1, net->nparams);
    free_values(m1, net->nparams);
    free_net(net);
}

/* Extra `out` axis: whole rows (output channels) are dropped. */
static void t_out_axis(void)
{
    const char *cfg = BASE_NET ALWAYS "dropback_channel_rate=0.5\ndropback_axis=out\n" BASE_LAYERS;
    cdb_network *a = net_from_text(cfg), *b = net_from_text(cfg);
    CHECK(a && b, "build");
    cdb_dropback_disable(b);
    train_steps(a, 1);
    train_steps(b, 1);
    int dropped_rows = 0, kept_rows = 0;
    for (int i = 0; i < a->nparams; i++) {
        cdb_param *pa = a->params[i], *pb = b->params[i];
        if (!pa->eligible) continue;
        CHECK(cdb_dropback_mask_channels(pa) == pa->rows, "mask must cover rows");
        size_t row = (size_t)pa->channels * pa->inner;
        for (int r = 0; r < pa->rows; r++) {
            for (size_t k = 0; k < row; k++) {
                float g = pa->grad[r * row + k];
                if (cdb_dropback_mask(pa)[r])
                    CHECK(g == 0.f, "dropped row %d has gradient %g", r, g);
                else
                    CHECK(g == pb->grad[r * row + k] / cdb_dropback_keep(pa), "kept row is not g / keep");
            }
            if (cdb_dropback_mask(pa)[r]) dropped_rows++;
            else kept_rows++;
        }
    }
    CHECK(dropped_rows && kept_rows, "need dropped and kept rows");
    free_net(a);
    free_net(b);
}

/* Extra compute skipping: the weight-gradient GEMMs cover kept channels
 * only, and the weights are bit-identical to compute-then-mask, for every
 * eligible layer type, both axes, grouped convolutions and subdivisions. */
static void compare_skip(const char *axis)
{
    char base[2048], skip[2048];
    const char *layers = "[convolutional]\nfilters=6\nsize=3\npad=1\nactivation=relu\n"
                         "[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\ngroups=2\nbatch_normalize=1\nactivation=relu\n"
                         "[tokens]\n[attention]\nheads=2\n[connected]\noutput=6\nactivation=gelu\n"
                         "[token_pool]\nmode=mean\n[connected]\noutput=5\nactivation=linear\n[softmax]\n";
    const char *head = "[net]\nbatch=4\nsubdivisions=2\nwidth=6\nheight=6\nchannels=2\nlearning_rate=0.1\n"
                       "momentum=0.9\ndecay=0.001\nseed=3\nmax_batches=10\n" ALWAYS "dropback_channel_rate=0.5\n";
    snprintf(base, sizeof(base), "%sdropback_axis=%s\n%s", head, axis, layers);
    snprintf(skip, sizeof(skip), "%sdropback_axis=%s\ndropback_skip_compute=1\n%s", head, axis, layers);
    cdb_network *a = net_from_text(base), *b = net_from_text(skip);
    CHECK(a && b, "build");
    train_steps(a, 3);
    train_steps(b, 3);
    int skipping = 0;
    for (int i = 0; i < b->nparams; i++) {
        const uint8_t *in_channels, *rows;
        cdb_dropback_skip_lists(&b->dropback, b->params[i], &in_channels, &rows);
        skipping += in_channels || rows;
    }
    CHECK(skipping >= 3, "compute skipping should be active on several tensors, is on %d", skipping);
    CHECK(same_params(a, b), "axis %s: compute skipping is not bit-identical to compute-then-mask", axis);
    free_net(a);
    free_net(b);
}

static void t_skip_compute_in(void) { compare_skip("in"); }

/* Sizes where OpenBLAS blocks and packs: still bit-identical. */
static void t_skip_compute_large(void)
{
    const char *head = "[net]\nbatch=64\nwidth=28\nheight=28\nchannels=3\nlearning_rate=0.01\nseed=5\nmax_batches=10\n"
                       ALWAYS "dropback_channel_rate=0.5\n";
    const char *layers = "[convolutional]\nfilters=48\nsize=3\npad=1\nactivation=relu\n"
                         "[convolutional]\nfilters=40\nsize=3\nstride=2\npad=1\nactivation=relu\n"
                         "[connected]\noutput=300\nactivation=relu\n[connected]\noutput=10\nactivation=linear\n[softmax]\n";
    char base[2048], skip[2048];
    snprintf(base, sizeof(base), "%s%s", head, layers);
    snprintf(skip, sizeof(skip), "%sdropback_skip_compute=1\n%s", head, layers);
    cdb_network *a = net_from_text(base), *b = net_from_text(skip);
    CHECK(a && b, "build");
    train_steps(a, 2);
    train_steps(b, 2);
    CHECK(same_params(a, b), "compute skipping is not bit-identical at blocked GEMM sizes");
    free_net(a);
    free_net(b);
}
static void t_skip_compute_out(void) { compare_skip("out"); }

/* Convolutions on the direct kernels (conv_direct.h): both axes, a strided
 * layer, subdivisions. */
static void t_skip_compute_direct(void)
{
    const char *axes[] = {"in", "out"};
    for (int a_i = 0; a_i < 2; a_i++) {
        char head[1024], base[2048], skip[2048];
        snprintf(head, sizeof(head),
                 "[net]\nbatch=4\nsubdivisions=2\nwidth=8\nheight=8\nchannels=32\nlearning_rate=0.1\nmomentum=0.9\n"
                 "seed=7\nmax_batches=10\n" ALWAYS "dropback_channel_rate=0.5\ndropback_axis=%s\n", axes[a_i]);
        const char *layers = "[convolutional]\nfilters=32\nsize=3\npad=1\nactivation=relu\n"
                             "[convolutional]\nfilters=64\nsize=3\nstride=2\npad=1\nbatch_normalize=1\nactivation=relu\n"
                             "[avgpool]\n[connected]\noutput=5\nactivation=linear\n[softmax]\n";
        snprintf(base, sizeof(base), "%s%s", head, layers);
        snprintf(skip, sizeof(skip), "%sdropback_skip_compute=1\n%s", head, layers);
        cdb_network *a = net_from_text(base), *b = net_from_text(skip);
        CHECK(a && b, "build");
        int direct = 0;
        for (int i = 0; i < b->n; i++)
            direct += !strcmp(b->layers[i].ops->name, "convolutional") && cdb_convolutional_uses_direct(&b->layers[i], b, 1);
        CHECK(direct == 2, "%d convolutions take the direct kernels, want 2", direct);
        train_steps(a, 3);
        train_steps(b, 3);
        CHECK(same_params(a, b), "axis %s: compute skipping on the direct kernels is not bit-identical", axes[a_i]);
        free_net(a);
        free_net(b);
    }
}

void register_dropback_tests(void)
{
    test_add_tagged("dropback/compute skipping is bit-identical (axis in)", t_skip_compute_in, TEST_KERNELS);
    test_add_tagged("dropback/compute skipping is bit-identical (axis out)", t_skip_compute_out, TEST_KERNELS);
    test_add_tagged("dropback/compute skipping is bit-identical (large GEMMs)", t_skip_compute_large, TEST_KERNELS);
    test_add_tagged("dropback/compute skipping is bit-identical (direct convolutions)", t_skip_compute_direct, TEST_KERNELS);
    test_add_tagged("dropback/r=1 rate=0.5: change is 0 or change/keep", t_mask_scaling, TEST_KERNELS);
    test_add_tagged("dropback/the same on the zoo's paths (depthwise, 1x1 per image, SE), both axes", t_mask_scaling_zoo_paths, TEST_KERNELS);
    test_add_tagged("dropback/off, -nodropback, per-layer off: bit-identical to no keys", t_off_is_bit_identical, TEST_KERNELS);
    test_add_tagged("dropback/ineligible tensors and skipped layers untouched", t_ineligible_and_skipped_untouched, TEST_KERNELS);
    test_add_tagged("dropback/per-layer channel_dropback and rate overrides", t_per_layer_overrides, TEST_KERNELS);
    test_add_tagged("dropback/selection and drop frequencies, milestones", t_statistics_and_schedule, TEST_KERNELS);
    test_add_tagged("dropback/single policy", t_single_policy, TEST_KERNELS);
    test_add_tagged("dropback/all channels dropped means none", t_all_dropped_means_none, TEST_KERNELS);
    test_add_tagged("dropback/masks depend only on seed and step", t_masks_resume, TEST_KERNELS);
    test_add_tagged("dropback/grad mode: decay not masked", t_decay_not_masked, TEST_KERNELS);
    test_add_tagged("dropback/strict mode freezes dropped channels", t_strict_mode, TEST_KERNELS);
    test_add_tagged("dropback/out axis drops rows", t_out_axis, TEST_KERNELS);
}
