/* Numerical gradient checks (Caffe-style) for every layer type and
 * activation: central differences of the network's mean cross-entropy
 * against the analytic gradients of the input and of every parameter.
 * Points where the left and right differences disagree (a ReLU kink or a
 * max-pool switch inside the step) are skipped, and must be rare. */
#include <stdlib.h>

#include "conv_direct.h"
#include "convolutional_layer.h"
#include "layers.h"
#include "test.h"

#define EPS 2e-3f
#define REL_TOL 2e-2
#define ABS_TOL 3e-4
#define CHECKS_PER_TENSOR 24

static double loss_of(cdb_network *net)
{
    net->loss = 0;
    cdb_network_forward(net, 1);
    return net->loss / net->batch;
}

typedef struct {
    int checked, skipped, failed;
    char first_failure[256];
} check_count;

/* Compare d loss / d x[i] for a few i against the analytic `grad`. */
static void check_tensor(cdb_network *net, float *x, const float *grad, size_t n, const char *what, check_count *c)
{
    cdb_rng rng = cdb_rng_stream(7, 1, n);
    int count = n < CHECKS_PER_TENSOR ? (int)n : CHECKS_PER_TENSOR;
    for (int k = 0; k < count; k++) {
        size_t i = n <= CHECKS_PER_TENSOR ? (size_t)k : (size_t)cdb_rng_int(&rng, (int)n);
        float saved = x[i];
        double l0 = loss_of(net);
        x[i] = saved + EPS;
        double lp = loss_of(net);
        x[i] = saved - EPS;
        double lm = loss_of(net);
        x[i] = saved;
        double right = (lp - l0) / EPS, left = (l0 - lm) / EPS, numeric = (lp - lm) / (2 * EPS);
        if (fabs(right - left) > 0.2 * (fabs(right) + fabs(left)) + 4 * ABS_TOL) {
            c->skipped++;
            continue;
        }
        c->checked++;
        double analytic = grad[i];
        if (fabs(numeric - analytic) > REL_TOL * fmax(fabs(numeric), fabs(analytic)) + ABS_TOL) {
            if (!c->failed)
                snprintf(c->first_failure, sizeof(c->first_failure), "%s[%zu]: numeric %.6g analytic %.6g", what, i,
                         numeric, analytic);
            c->failed++;
            if (getenv("GRADCHECK_VERBOSE")) printf("    %s[%zu] numeric %.6g analytic %.6g\n", what, i, numeric, analytic);
        }
    }
}

/* The layer types of the networks gradcheck() builds, while
 * t_every_type_checked runs (it builds them without checking). */
static int recording, n_seen;
static const char *seen_types[64];

static void record_types(const cdb_network *net)
{
    for (int i = 0; recording && i < net->n; i++) {
        int known = 0;
        for (int k = 0; k < n_seen; k++) known |= !strcmp(seen_types[k], net->layers[i].ops->name);
        if (!known && n_seen < 64) seen_types[n_seen++] = net->layers[i].ops->name;
    }
}

/* Gradient-check the whole network of `cfg_text` on random data. */
static void gradcheck(const char *cfg_text)
{
    cdb_network *net = net_from_text(cfg_text);
    CHECK(net, "network did not build");
    if (recording) { /* t_every_type_checked: the types only; the case itself checks them */
        record_types(net);
        cdb_network_free(net);
        return;
    }
    cdb_network_enable_input_gradient(net);
    size_t nin = (size_t)net->mini_batch * net->inputs;
    fill_normal(net->input, nin, 11, 1.f);
    /* A smoothed random target distribution per image. */
    cdb_rng rng = cdb_rng_stream(5, 5, 5);
    for (int b = 0; b < net->mini_batch; b++) {
        float sum = 0, *t = net->truth + (size_t)b * net->classes;
        for (int k = 0; k < net->classes; k++) sum += t[k] = 0.05f + cdb_rng_uniform(&rng);
        for (int k = 0; k < net->classes; k++) t[k] /= sum;
    }
    for (int i = 0; i < net->nparams; i++) memset(net->params[i]->grad, 0, net->params[i]->size * sizeof(float));
    loss_of(net);
    cdb_network_backward(net);
    float *input_grad = malloc(nin * sizeof(float));
    memcpy(input_grad, net->input_delta, nin * sizeof(float));
    float **grads = calloc((size_t)net->nparams, sizeof(float *));
    for (int i = 0; i < net->nparams; i++) {
        grads[i] = malloc(net->params[i]->size * sizeof(float));
        memcpy(grads[i], net->params[i]->grad, net->params[i]->size * sizeof(float));
    }
    check_count c = {0};
    check_tensor(net, net->input, input_grad, nin, "input", &c);
    for (int i = 0; i < net->nparams; i++) {
        char what[64];
        snprintf(what, sizeof(what), "param %d (%s)", i, net->params[i]->name);
        check_tensor(net, net->params[i]->value, grads[i], net->params[i]->size, what, &c);
    }
    for (int i = 0; i < net->nparams; i++) free(grads[i]);
    free(grads);
    free(input_grad);
    cdb_network_free(net);
    CHECK(c.failed == 0, "%d of %d gradient checks failed; first: %s", c.failed, c.checked, c.first_failure);
    if (getenv("GRADCHECK_VERBOSE")) printf("    %d checked, %d skipped\n", c.checked, c.skipped);
    CHECK(c.skipped * 5 <= c.checked, "too many kinks skipped (%d skipped, %d checked)", c.skipped, c.checked);
    CHECK(c.checked >= 10, "only %d points checked", c.checked);
}

#define NET_HEAD "[net]\nbatch=2\nwidth=6\nheight=5\nchannels=3\n"
#define NET_HEAD4 "[net]\nbatch=4\nwidth=6\nheight=5\nchannels=3\n"
#define HEAD_TAIL "[connected]\noutput=4\nactivation=linear\n[softmax]\n"

static void t_conv_3x3_bias(void) { gradcheck(NET_HEAD "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=linear\n" HEAD_TAIL); }
/* bias=0 after a pre-activation batch norm, as PreAct-ResNet and DenseNet. */
static void t_conv_nobias(void)
{
    gradcheck(NET_HEAD "[batchnorm]\nactivation=relu\n[convolutional]\nfilters=4\nsize=3\npad=1\nbias=0\nactivation=linear\n" HEAD_TAIL);
}
/* A 1x1 convolution on 256 pixels: one GEMM per image on the image itself. */
static void t_conv_pointwise_per_image(void)
{
    gradcheck("[net]\nbatch=2\nwidth=16\nheight=16\nchannels=3\n[convolutional]\nfilters=5\nsize=1\nactivation=tanh\n"
              "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n[avgpool]\n[softmax]\n");
}
static void t_conv_stride2(void)
{
    gradcheck(NET_HEAD "[convolutional]\nfilters=4\nsize=3\nstride=2\npad=1\nactivation=leaky\n" HEAD_TAIL);
}
static void t_conv_nopad_5x5(void) { gradcheck(NET_HEAD "[convolutional]\nfilters=3\nsize=5\nactivation=tanh\n" HEAD_TAIL); }
static void t_conv_bn(void)
{
    gradcheck(NET_HEAD4 "[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\nactivation=gelu\n" HEAD_TAIL);
}
static void t_conv_groups(void)
{
    gradcheck("[net]\nbatch=2\nwidth=5\nheight=5\nchannels=4\n"
              "[convolutional]\nfilters=6\nsize=3\npad=1\ngroups=2\nactivation=swish\n" HEAD_TAIL);
}
static void t_conv_depthwise(void)
{
    gradcheck("[net]\nbatch=2\nwidth=5\nheight=5\nchannels=4\n"
              "[convolutional]\nfilters=4\nsize=3\npad=1\ngroups=4\nactivation=linear\n" HEAD_TAIL);
}
static void t_conv_pointwise(void)
{
    gradcheck(NET_HEAD "[convolutional]\nfilters=5\nsize=1\nactivation=mish\n" HEAD_TAIL);
}
/* The direct convolution kernels (conv_direct.h: 32 input channels, 32
 * filters): a 'same' layer, then a strided one, both passes on the kernels. */
static void t_conv_direct(void)
{
    cdb_network *net;
    const char *text = "[net]\nbatch=2\nwidth=6\nheight=5\nchannels=32\n"
                       "[convolutional]\nfilters=32\nsize=3\npad=1\nactivation=linear\n"
                       "[convolutional]\nfilters=32\nsize=3\nstride=2\npad=1\nactivation=leaky\n" HEAD_TAIL;
    net = net_from_text(text);
    CHECK(net, "build");
    cdb_network_enable_input_gradient(net);
    for (int i = 0; i < 2; i++)
        CHECK(cdb_convolutional_uses_direct(&net->layers[i], net, 0) && cdb_convolutional_uses_direct(&net->layers[i], net, 1),
              "layer %d should take the direct kernels", i);
    cdb_network_free(net);
    gradcheck(text);
    /* an even image: the 'same' layer's output and input gradient by Winograd */
    const char *even = "[net]\nbatch=2\nwidth=6\nheight=4\nchannels=32\n"
                       "[convolutional]\nfilters=32\nsize=3\npad=1\nactivation=linear\n"
                       "[convolutional]\nfilters=32\nsize=3\nstride=2\npad=1\nactivation=leaky\n" HEAD_TAIL;
    net = net_from_text(even);
    CHECK(net, "build");
    CHECK(cdb_convolutional_uses_winograd(&net->layers[0], net), "layer 0 should take Winograd");
    cdb_network_free(net);
    gradcheck(even);
}
static void t_activation_layer(void)
{
    gradcheck(NET_HEAD "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=linear\n[activation]\nactivation=selu\n"
                       "[activation]\nactivation=hard_mish\n" HEAD_TAIL);
}
static void t_connected(void) { gradcheck(NET_HEAD "[connected]\noutput=7\nactivation=logistic\n" HEAD_TAIL); }
static void t_connected_bn(void)
{
    gradcheck(NET_HEAD4 "[connected]\noutput=6\nbatch_normalize=1\nactivation=linear\n" HEAD_TAIL);
}
static void t_batchnorm(void) { gradcheck(NET_HEAD4 "[batchnorm]\n" HEAD_TAIL); }
/* pre-activation: batch norm then ReLU before a convolution */
static void t_batchnorm_preact(void)
{
    gradcheck(NET_HEAD4 "[batchnorm]\nactivation=relu\n[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=linear\n"
                        "[batchnorm]\nactivation=swish\n" HEAD_TAIL);
}
static void t_maxpool(void) { gradcheck(NET_HEAD "[maxpool]\nsize=2\nstride=2\n" HEAD_TAIL); }
static void t_maxpool_even(void)
{
    gradcheck("[net]\nbatch=2\nwidth=6\nheight=4\nchannels=3\n[maxpool]\nsize=2\nstride=2\n" HEAD_TAIL);
}
static void t_maxpool_overlap(void) { gradcheck(NET_HEAD "[maxpool]\nsize=3\nstride=1\n" HEAD_TAIL); }
static void t_avgpool(void) { gradcheck(NET_HEAD "[avgpool]\n" HEAD_TAIL); }
static void t_shortcut(void)
{
    gradcheck(NET_HEAD "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=linear\n"
                       "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=linear\n"
                       "[shortcut]\nfrom=-2\nactivation=swish\n" HEAD_TAIL);
}
static void t_route(void)
{
    gradcheck(NET_HEAD "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n"
                       "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=linear\n"
                       "[route]\nlayers=-1,-2\n" HEAD_TAIL);
}
static void t_local_avgpool(void)
{
    gradcheck("[net]\nbatch=2\nwidth=6\nheight=4\nchannels=3\n[local_avgpool]\nsize=2\nstride=2\n" HEAD_TAIL);
}
/* 3/1 with the default padding 2: windows clipped at every border */
static void t_local_avgpool_overlap(void) { gradcheck(NET_HEAD "[local_avgpool]\nsize=3\n" HEAD_TAIL); }
/* squeeze-and-excitation: pool, squeeze, excite, scale layer 0's output */
static void t_scale_channels(void)
{
    gradcheck(NET_HEAD "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=linear\n[avgpool]\n"
                       "[convolutional]\nfilters=2\nsize=1\nactivation=relu\n"
                       "[convolutional]\nfilters=4\nsize=1\nactivation=logistic\n"
                       "[scale_channels]\nfrom=-4\n" HEAD_TAIL);
}
static void t_shuffle(void)
{
    gradcheck(NET_HEAD "[convolutional]\nfilters=6\nsize=1\nactivation=linear\n[shuffle]\ngroups=3\n" HEAD_TAIL);
}
/* ShuffleNetV2's split: the second half of layer 0 goes on, then both halves of a route */
static void t_route_groups(void)
{
    gradcheck(NET_HEAD "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n"
                       "[route]\nlayers=-1\ngroups=2\ngroup_id=1\n"
                       "[convolutional]\nfilters=2\nsize=3\npad=1\nactivation=linear\n"
                       "[route]\nlayers=-3,-1\ngroups=2\ngroup_id=0\n" HEAD_TAIL);
}
/* Darknet's shortcut across shapes: a larger map with more channels read
 * every second pixel; a smaller map with fewer channels added to every
 * second pixel. */
static void t_shortcut_across_shapes(void)
{
    gradcheck("[net]\nbatch=2\nwidth=8\nheight=8\nchannels=3\n"
              "[convolutional]\nfilters=5\nsize=3\npad=1\nactivation=linear\n"
              "[convolutional]\nfilters=3\nsize=3\nstride=2\npad=1\nactivation=linear\n"
              "[shortcut]\nfrom=-2\nactivation=swish\n"
              "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=linear\n"
              "[maxpool]\nsize=2\nstride=2\n"
              "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n"
              "[route]\nlayers=-4\n"
              "[shortcut]\nfrom=-2\n" HEAD_TAIL);
}
/* Stochastic depth: with batch 4 and P=0.5 the masks of a step drop some
 * branches and keep others (tests/test_layers.c checks which). */
static void t_shortcut_drop_connect(void)
{
    gradcheck(NET_HEAD4 "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=linear\n"
                        "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=linear\n"
                        "[shortcut]\nfrom=-2\ndrop_connect=0.5\n" HEAD_TAIL);
}
/* Darknet's [cost] after [softmax]: (1 + scale) x the cross-entropy. */
static void t_cost(void)
{
    gradcheck(NET_HEAD "[convolutional]\nfilters=2\nsize=3\npad=1\nactivation=linear\n"
                       "[connected]\noutput=4\nactivation=linear\n[softmax]\n[cost]\ntype=sse\nscale=0.5\n");
}
static void t_crop(void)
{
    gradcheck(NET_HEAD "[crop]\ncrop_height=4\ncrop_width=5\nflip=1\n[convolutional]\nfilters=2\nsize=3\npad=1\n"
                       "activation=linear\n" HEAD_TAIL);
}
static void t_dropout(void) { gradcheck(NET_HEAD "[dropout]\nprobability=0.3\n" HEAD_TAIL); }
/* Darknet's dilation: 3x3 taps two apart (pad 2), and 5x5 three apart with
 * a stride. */
static void t_conv_dilated(void)
{
    gradcheck("[net]\nbatch=2\nwidth=9\nheight=8\nchannels=2\n[convolutional]\nfilters=3\nsize=3\npad=1\n"
              "dilation=2\nactivation=linear\n[convolutional]\nfilters=2\nsize=5\nstride=2\npad=1\ndilation=3\n"
              "activation=linear\n" HEAD_TAIL);
}
/* Darknet's [logistic]: binary cross-entropy of each output; soft targets
 * (label smoothing) too. */
static void t_logistic(void)
{
    gradcheck(NET_HEAD "label_smoothing=0.2\n[convolutional]\nfilters=2\nsize=3\npad=1\nactivation=linear\n"
                       "[connected]\noutput=4\nactivation=linear\n[logistic]\n");
}
static void t_softmax_only(void) { gradcheck("[net]\nbatch=3\nwidth=1\nheight=1\nchannels=4\n[softmax]\n"); }
/* Darknet's temperature, with a [cost] after it */
static void t_softmax_temperature(void)
{
    gradcheck(NET_HEAD "[connected]\noutput=4\nactivation=linear\n[softmax]\ntemperature=2.5\n[cost]\nscale=0.5\n");
}

#define ACTIVATION_TEST(act) \
    static void t_act_##act(void) { gradcheck(NET_HEAD "[connected]\noutput=6\nactivation=" #act "\n" HEAD_TAIL); }
ACTIVATION_TEST(linear)
ACTIVATION_TEST(relu)
ACTIVATION_TEST(leaky)
ACTIVATION_TEST(relu6)
ACTIVATION_TEST(logistic)
ACTIVATION_TEST(tanh)
ACTIVATION_TEST(gelu)
ACTIVATION_TEST(swish)
ACTIVATION_TEST(silu)
ACTIVATION_TEST(mish)
ACTIVATION_TEST(hardswish)
/* Darknet's, with init_std=1 so that the pre-activations (of order 10)
 * reach every piece of the piecewise ones (plse's bends are at +-4). */
#define DARKNET_ACTIVATION_TEST(act)                                                                       \
    static void t_act_##act(void)                                                                          \
    {                                                                                                      \
        gradcheck(NET_HEAD "[connected]\noutput=8\ninit_std=1\nactivation=" #act "\n" HEAD_TAIL);          \
    }
DARKNET_ACTIVATION_TEST(elu)
DARKNET_ACTIVATION_TEST(selu)
DARKNET_ACTIVATION_TEST(ramp)
DARKNET_ACTIVATION_TEST(hardtan)
DARKNET_ACTIVATION_TEST(lhtan)
DARKNET_ACTIVATION_TEST(plse)
DARKNET_ACTIVATION_TEST(loggy)
DARKNET_ACTIVATION_TEST(relie)
DARKNET_ACTIVATION_TEST(revleaky)
DARKNET_ACTIVATION_TEST(hard_mish)

/* Token sequences: a 2x2 patch embedding of a 3x4x4 input gives 4 tokens of 6. */
#define SEQ_HEAD NET_HEAD4_SEQ "[convolutional]\nfilters=6\nsize=2\nstride=2\nactivation=linear\n[tokens]\n"
#define NET_HEAD4_SEQ "[net]\nbatch=2\nwidth=4\nheight=4\nchannels=3\n"
#define SEQ_TAIL "[token_pool]\nmode=mean\n" HEAD_TAIL

static void t_tokens(void) { gradcheck(SEQ_HEAD SEQ_TAIL); }
static void t_cls_token(void) { gradcheck(SEQ_HEAD "[cls_token]\n[token_pool]\nmode=cls\n" HEAD_TAIL); }
static void t_pos_embed(void) { gradcheck(SEQ_HEAD "[cls_token]\n[pos_embed]\n" SEQ_TAIL); }
static void t_layernorm(void) { gradcheck(SEQ_HEAD "[layernorm]\n" SEQ_TAIL); }
static void t_attention(void) { gradcheck(SEQ_HEAD "[cls_token]\n[attention]\nheads=2\ninit_std=0.5\n" SEQ_TAIL); }
static void t_tokenwise_connected(void) { gradcheck(SEQ_HEAD "[connected]\noutput=5\nactivation=gelu\n" SEQ_TAIL); }
static void t_encoder_block(void)
{
    gradcheck(SEQ_HEAD "[cls_token]\n[pos_embed]\n"
                       "[layernorm]\n[attention]\nheads=3\ninit_std=0.1\n[shortcut]\nfrom=-3\n"
                       "[layernorm]\n[connected]\noutput=8\nactivation=gelu\n[connected]\noutput=6\nactivation=linear\n"
                       "[shortcut]\nfrom=-4\n[layernorm]\n[token_pool]\nmode=cls\n" HEAD_TAIL);
}

static const struct {
    const char *name;
    test_fn fn;
} cases[] = {
    {"gradcheck/tokens", t_tokens},
    {"gradcheck/cls_token and class-token pooling", t_cls_token},
    {"gradcheck/pos_embed", t_pos_embed},
    {"gradcheck/layernorm", t_layernorm},
    {"gradcheck/attention", t_attention},
    {"gradcheck/token-wise connected gelu", t_tokenwise_connected},
    {"gradcheck/pre-norm encoder block", t_encoder_block},
    {"gradcheck/conv 3x3 pad 1 with bias", t_conv_3x3_bias},
    {"gradcheck/conv 1x1 on 16x16 (a GEMM per image, no columns)", t_conv_pointwise_per_image},
    {"gradcheck/conv without bias (bias=0) after [batchnorm] relu", t_conv_nobias},
    {"gradcheck/conv stride 2 leaky", t_conv_stride2},
    {"gradcheck/conv on the direct kernels, stride 1 and 2", t_conv_direct},
    {"gradcheck/conv 5x5 no padding tanh", t_conv_nopad_5x5},
    {"gradcheck/conv batch norm (training mode) gelu", t_conv_bn},
    {"gradcheck/conv groups=2 swish", t_conv_groups},
    {"gradcheck/conv depthwise", t_conv_depthwise},
    {"gradcheck/conv 1x1 pointwise mish", t_conv_pointwise},
    {"gradcheck/connected logistic", t_connected},
    {"gradcheck/connected batch norm", t_connected_bn},
    {"gradcheck/batchnorm layer", t_batchnorm},
    {"gradcheck/batchnorm with an activation (pre-activation block)", t_batchnorm_preact},
    {"gradcheck/maxpool 2/2", t_maxpool},
    {"gradcheck/maxpool 2/2 on an even input (fast path)", t_maxpool_even},
    {"gradcheck/maxpool 3/1 overlapping", t_maxpool_overlap},
    {"gradcheck/avgpool", t_avgpool},
    {"gradcheck/shortcut", t_shortcut},
    {"gradcheck/route", t_route},
    {"gradcheck/local_avgpool 2/2", t_local_avgpool},
    {"gradcheck/local_avgpool 3/1 clipped windows", t_local_avgpool_overlap},
    {"gradcheck/scale_channels (squeeze-and-excitation)", t_scale_channels},
    {"gradcheck/shuffle", t_shuffle},
    {"gradcheck/route groups and group_id", t_route_groups},
    {"gradcheck/dropout", t_dropout},
    {"gradcheck/crop (Darknet)", t_crop},
    {"gradcheck/activation layer", t_activation_layer},
    {"gradcheck/cost after softmax (Darknet)", t_cost},
    {"gradcheck/shortcut drop_connect (stochastic depth)", t_shortcut_drop_connect},
    {"gradcheck/shortcut across shapes (Darknet)", t_shortcut_across_shapes},
    {"gradcheck/softmax cross-entropy", t_softmax_only},
    {"gradcheck/softmax temperature and cost (Darknet)", t_softmax_temperature},
    {"gradcheck/logistic binary cross-entropy (Darknet)", t_logistic},
    {"gradcheck/convolution with dilation (Darknet)", t_conv_dilated},
    {"gradcheck/activation linear", t_act_linear},
    {"gradcheck/activation relu", t_act_relu},
    {"gradcheck/activation leaky", t_act_leaky},
    {"gradcheck/activation relu6", t_act_relu6},
    {"gradcheck/activation logistic", t_act_logistic},
    {"gradcheck/activation tanh", t_act_tanh},
    {"gradcheck/activation gelu", t_act_gelu},
    {"gradcheck/activation swish", t_act_swish},
    {"gradcheck/activation silu", t_act_silu},
    {"gradcheck/activation mish", t_act_mish},
    {"gradcheck/activation hardswish", t_act_hardswish},
    {"gradcheck/activation elu (Darknet)", t_act_elu},
    {"gradcheck/activation selu (Darknet)", t_act_selu},
    {"gradcheck/activation ramp (Darknet)", t_act_ramp},
    {"gradcheck/activation hardtan (Darknet)", t_act_hardtan},
    {"gradcheck/activation lhtan (Darknet)", t_act_lhtan},
    {"gradcheck/activation plse (Darknet)", t_act_plse},
    {"gradcheck/activation loggy (Darknet)", t_act_loggy},
    {"gradcheck/activation relie (Darknet)", t_act_relie},
    {"gradcheck/activation revleaky (Darknet)", t_act_revleaky},
    {"gradcheck/activation hard_mish (Darknet)", t_act_hard_mish},
};
#define N_CASES ((int)(sizeof(cases) / sizeof(cases[0])))

/* Every registered layer type is gradient-checked: build the network of
 * every case above (without checking it again: the cases are tests of
 * their own), note their layer types, and look each registered type up. A
 * new layer type fails here until it has a case. */
static void t_every_type_checked(void)
{
    recording = 1;
    n_seen = 0;
    for (int i = 0; i < N_CASES; i++) cases[i].fn();
    recording = 0;
    char names[1024];
    snprintf(names, sizeof(names), "%s", cdb_layer_type_names());
    for (char *save = NULL, *name = strtok_r(names, ", ", &save); name; name = strtok_r(NULL, ", ", &save)) {
        int found = 0;
        for (int k = 0; k < n_seen; k++) found |= !strcmp(seen_types[k], name);
        CHECK(found, "no gradient check builds a [%s] layer", name);
    }
}

void register_gradcheck_tests(void)
{
    for (int i = 0; i < N_CASES; i++) test_add_tagged(cases[i].name, cases[i].fn, TEST_KERNELS);
    test_add_tagged("gradcheck/every registered layer type has a gradient check", t_every_type_checked, TEST_KERNELS);
}
