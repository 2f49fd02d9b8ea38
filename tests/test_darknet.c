/* Darknet's dialect: the cfgs of tests/darknet/ (each says, in "# expect
 * LAYER: CxHxW" lines, the output shapes Darknet gives them), both forks'
 * weights layouts built here from known arrays, old weights versions, and
 * the darknet=1 training semantics. */
#include <fcntl.h>
#include <glob.h>
#include <stdlib.h>
#include <unistd.h>

#include "batchnorm_layer.h"
#include "convolutional_layer.h"
#include "augment.h"
#include "optimizer.h"
#include "schedule.h"
#include "test.h"

static void t_corpus_shapes(void)
{
    glob_t g;
    CHECK(glob("tests/darknet/*.cfg", 0, NULL, &g) == 0 && g.gl_pathc >= 4, "the Darknet corpus is missing");
    int checked = 0;
    for (size_t f = 0; f < g.gl_pathc; f++) {
        const char *path = g.gl_pathv[f];
        cdb_network *net = cdb_network_load(path, NULL, 0);
        if (!net) {
            test_fail(__FILE__, __LINE__, "%s: %s", path, cdb_last_error());
            break;
        }
        FILE *fp = fopen(path, "r");
        char line[512];
        int expectations = 0, bad = 0;
        while (!bad && fgets(line, sizeof(line), fp)) {
            int layer, c, h, w;
            if (sscanf(line, "# expect %d: %dx%dx%d", &layer, &c, &h, &w) != 4) continue;
            expectations++;
            if (layer >= net->n) {
                test_fail(__FILE__, __LINE__, "%s: expects layer %d of %d", path, layer, net->n);
                bad = 1;
                break;
            }
            const cdb_layer *l = &net->layers[layer];
            if (l->out_c != c || l->out_h != h || l->out_w != w) {
                test_fail(__FILE__, __LINE__, "%s: layer %d [%s] is %dx%dx%d, Darknet gives %dx%dx%d", path, layer,
                          l->ops->name, l->out_c, l->out_h, l->out_w, c, h, w);
                bad = 1;
            }
        }
        fclose(fp);
        free_net(net);
        if (bad) break;
        if (!expectations) {
            test_fail(__FILE__, __LINE__, "%s has no '# expect' lines", path);
            break;
        }
        checked += expectations;
    }
    globfree(&g);
    CHECK(!test_failed() && checked >= 10, "%d shapes checked", checked);
}

/* Loads a cfg with stderr captured into err. */
static cdb_network *load_capturing_stderr(const char *path, char *err, size_t n)
{
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s/stderr.txt", test_tmpdir());
    fflush(stderr);
    int saved = dup(2), fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
    cdb_network *net = cdb_network_load(path, NULL, 0);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *fp = fopen(tmp, "r");
    size_t got = fp ? fread(err, 1, n - 1, fp) : 0;
    err[got] = 0;
    if (fp) fclose(fp);
    return net;
}

static void t_duplicate_keys_take_the_first(void)
{
    char out[4096];
    cdb_network *net = load_capturing_stderr("tests/darknet/duplicate_keys.cfg", out, sizeof(out));
    CHECK(net, "%s", cdb_last_error());
    cdb_trainer *tr = cdb_trainer_new(net);
    CHECK(tr, "%s", cdb_last_error());
    CHECK(tr->cfg.momentum == 0.9f, "momentum %g: Darknet uses the first of momentum=0.9 and momentum=0.95",
          tr->cfg.momentum);
    CHECK(net->layers[0].out_c == 8, "filters %d, the first value is 8", net->layers[0].out_c);
    cdb_trainer_free(tr);
    free_net(net);
    CHECK(strstr(out, "duplicate_keys.cfg:12: [net] key 'momentum' given again: '0.95' here, '0.9' on line 10"),
          "the warning names both lines and values: %s", out);
    CHECK(strstr(out, "duplicate_keys.cfg:13: [net] key 'decay' given again, with the same value as on line 11"),
          "the warning for a repeated equal value: %s", out);
}

static void t_darknet_semantics(void)
{
    cdb_network *net = cdb_network_load("tests/darknet/darknet_semantics.cfg", NULL, 0);
    CHECK(net, "%s", cdb_last_error());
    cdb_trainer *tr = cdb_trainer_new(net);
    input_config in;
    CHECK(tr && cdb_input_config_of(net, &in) == 0, "%s", cdb_last_error());
    const train_config *t = &tr->cfg;
    CHECK(t->darknet && !t->decay_norm_bias, "darknet=1 turns off decay on biases and scales");
    CHECK(in.flip == 1 && in.darknet_crop == 1, "darknet=1: Darknet's flips and crop by default");
    /* Darknet: lr * (batch_num / burn_in)^power, batch_num counted from 1. */
    float lr0 = cdb_schedule_learning_rate(t, 0), lr4 = cdb_schedule_learning_rate(t, 4), lr9 = cdb_schedule_learning_rate(t, 9);
    CHECK(fabsf(lr0 - 0.1f * 1e-4f) < 1e-10f && fabsf(lr4 - 0.1f * 0.0625f) < 1e-8f && lr9 == 0.1f,
          "burn-in %g %g %g, want 1e-05 0.00625 0.1", lr0, lr4, lr9);
    conv_priv *p = net->layers[0].priv;
    CHECK(p->bn.momentum == BN_MOMENTUM_DARKNET, "batch norm momentum %g", p->bn.momentum);
    for (int k = 0; k < net->nparams; k++)
        CHECK((cdb_optimizer_decay(net->params[k], t) != 0) == net->params[k]->eligible, "%s decayed: %g",
              net->params[k]->name, cdb_optimizer_decay(net->params[k], t));
    cdb_trainer_free(tr);
    free_net(net);
    /* Without darknet=1 the same cfg has the reference's semantics. */
    const char *ov[] = {"net.darknet=0"};
    net = cdb_network_load("tests/darknet/darknet_semantics.cfg", ov, 1);
    CHECK(net, "%s", cdb_last_error());
    tr = cdb_trainer_new(net);
    CHECK(tr && cdb_input_config_of(net, &in) == 0, "%s", cdb_last_error());
    p = net->layers[0].priv;
    CHECK(tr->cfg.decay_norm_bias && p->bn.momentum == BN_MOMENTUM &&
              cdb_schedule_learning_rate(&tr->cfg, 0) == 0.1f * 1 / 10 && !in.flip && !in.darknet_crop,
          "reference semantics");
    cdb_trainer_free(tr);
    free_net(net);
    net = cdb_network_load("tests/darknet/darknet_semantics.cfg", NULL, 0);
    CHECK(net, "%s", cdb_last_error());
    char *out = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&out, &len);
    cdb_network_print_summary(net, mem);
    fclose(mem);
    free_net(net);
    int said = strstr(out, "semantics: Darknet's (darknet=1): burn_in lr*(step/burn_in)^power, weight decay not on biases "
                      "and norm scales, batch norm momentum 0.01") != NULL;
    CHECK(said, "the summary says which semantics: %s", out);
    free(out);
}

/* A network with a [batchnorm] layer between a convolution and a
 * connected layer; files in each fork's layout are written from known
 * arrays and must land in the right tensors. */
#define BN_NET                                                                                                 \
    "[net]\nbatch=1\nwidth=4\nheight=4\nchannels=2\n"                                                         \
    "[convolutional]\nfilters=3\nsize=1\nactivation=linear\n[batchnorm]\n"                                    \
    "[connected]\noutput=2\nactivation=linear\n[softmax]\n"

static void put(FILE *fp, int n, float base)
{
    for (int i = 0; i < n; i++) {
        float v = base + 0.01f * (float)i;
        fwrite(&v, 4, 1, fp);
    }
}

/* layout 0: AlexeyAB (biases, scales, mean, variance); 1: pjreddie
 * (scales, mean, variance); version 1 writes a 0.1 header with a 32-bit
 * images-seen count. */
static void write_bn_file(const char *path, int pjreddie, int old_version)
{
    FILE *fp = fopen(path, "wb");
    int32_t header[3] = {0, old_version ? 1 : 2, 0};
    fwrite(header, 4, 3, fp);
    if (old_version) {
        uint32_t seen = 7;
        fwrite(&seen, 4, 1, fp);
    } else {
        uint64_t seen = 7;
        fwrite(&seen, 8, 1, fp);
    }
    put(fp, 3, 0.1f);  /* conv biases */
    put(fp, 6, 0.2f);  /* conv weights 3x2 */
    if (!pjreddie) put(fp, 3, -0.3f); /* [batchnorm] biases */
    put(fp, 3, 1.5f);  /* scales */
    put(fp, 3, 0.4f);  /* rolling mean */
    put(fp, 3, 2.0f);  /* rolling variance */
    put(fp, 2, 0.05f); /* connected biases */
    put(fp, 96, -0.2f);
    fclose(fp);
}

static int close_to(const float *x, int n, float base)
{
    for (int i = 0; i < n; i++)
        if (fabsf(x[i] - (base + 0.01f * (float)i)) > 1e-7f) return 0;
    return 1;
}

static void t_weights_layouts(void)
{
    cdb_network *net = net_from_text(BN_NET);
    CHECK(net, "build");
    batchnorm *bn = &((bn_layer_priv *)net->layers[1].priv)->bn;
    char path[512];
    for (int layout = 0; layout < 3; layout++) {
        snprintf(path, sizeof(path), "%s/layout%d.weights", test_tmpdir(), layout);
        write_bn_file(path, layout == 1, layout == 2);
        for (int i = 0; i < 3; i++) bn->biases->value[i] = 9;
        CHECK(cdb_weights_load(net, path) == 0, "layout %d: %s", layout, cdb_last_error());
        CHECK(net->images_seen == 7, "images seen %llu", (unsigned long long)net->images_seen);
        CHECK(layout == 1 ? bn->biases->value[0] == 0 && bn->biases->value[2] == 0 : close_to(bn->biases->value, 3, -0.3f),
              "layout %d: biases %g %g %g", layout, bn->biases->value[0], bn->biases->value[1], bn->biases->value[2]);
        CHECK(close_to(bn->scales->value, 3, 1.5f) && close_to(bn->rolling_mean, 3, 0.4f) &&
                  close_to(bn->rolling_variance, 3, 2.0f),
              "layout %d: scales %g mean %g variance %g", layout, bn->scales->value[0], bn->rolling_mean[0],
              bn->rolling_variance[0]);
        CHECK(!strcmp(net->layers[2].params[0].name, "weights") && close_to(net->layers[2].params[0].value, 96, -0.2f),
              "layout %d: the connected weights after the batch norm", layout);
    }
    /* cdbnet writes AlexeyAB's order. */
    snprintf(path, sizeof(path), "%s/saved.weights", test_tmpdir());
    CHECK(cdb_weights_save(net, path) == 0, "%s", cdb_last_error());
    FILE *fp = fopen(path, "rb");
    float arrays[12];
    CHECK(fp && fseek(fp, 20 + 9 * 4, SEEK_SET) == 0 && fread(arrays, 4, 12, fp) == 12, "read back");
    fclose(fp);
    CHECK(!memcmp(arrays, bn->biases->value, 12) && !memcmp(arrays + 3, bn->scales->value, 12) &&
              !memcmp(arrays + 6, bn->rolling_mean, 12) && !memcmp(arrays + 9, bn->rolling_variance, 12),
          "[batchnorm] is written biases, scales, mean, variance");
    /* A size that fits neither layout names both. */
    fp = fopen(path, "ab");
    fwrite(arrays, 4, 1, fp);
    fclose(fp);
    CHECK(cdb_weights_load(net, path) != 0 && strstr(cdb_last_error(), "in pjreddie's layout"), "%s",
          cdb_last_error());
    /* Darknet's transposed-[connected] marker is refused with its reason. */
    write_bn_file(path, 0, 0);
    fp = fopen(path, "r+b");
    int32_t major = 1001;
    fwrite(&major, 4, 1, fp);
    fclose(fp);
    CHECK(cdb_weights_load(net, path) != 0 && strstr(cdb_last_error(), "transposed"), "%s", cdb_last_error());
    free_net(net);
}

/* [softmax] then [cost] (scale 1): the same network's gradients, twice
 * those without the [cost]; predictions unchanged. */
static void t_cost_doubles_the_gradient(void)
{
    cdb_network *with = cdb_network_load("tests/darknet/classifier_cost.cfg", NULL, 0);
    CHECK(with, "%s", cdb_last_error());
    FILE *fp = fopen("tests/darknet/classifier_cost.cfg", "r");
    char text[4096];
    size_t len = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[len] = 0;
    char *cost = strstr(text, "\n[cost]");
    CHECK(cost, "the cfg ends with [cost]");
    *cost = 0;
    cdb_network *without = net_from_text(text);
    CHECK(without && with->nparams == without->nparams, "build without [cost]");
    fill_normal(with->input, (size_t)4 * with->inputs, 9, 1.f);
    memcpy(without->input, with->input, (size_t)4 * with->inputs * sizeof(float));
    for (int b = 0; b < 4; b++) with->truth[b * 10 + b] = without->truth[b * 10 + b] = 1;
    with->loss = without->loss = 0;
    cdb_network_forward(with, 1);
    cdb_network_backward(with);
    cdb_network_forward(without, 1);
    cdb_network_backward(without);
    CHECK(fabs(with->loss - 2 * without->loss) <= 1e-5 * without->loss, "loss %g, twice %g", with->loss,
          without->loss);
    for (int k = 0; k < with->nparams; k++)
        for (size_t i = 0; i < with->params[k]->size; i++) {
            float a = with->params[k]->grad[i], b = without->params[k]->grad[i];
            CHECK(fabsf(a - 2 * b) <= 1e-5f * (fabsf(b) + 1e-6f), "%s gradient %zu: %g, twice %g", with->params[k]->name,
                  i, a, b);
        }
    cdb_network_forward(with, 0);
    cdb_network_forward(without, 0);
    CHECK(!memcmp(cdb_network_output(with), cdb_network_output(without), 40 * sizeof(float)), "predictions differ");
    free_net(with);
    free_net(without);
}

/* The shortcut across shapes against Darknet's formula: layer 2 adds
 * layer 0 (8 channels, 8x8) read at (2j, 2i) to the first 8 of layer 1's 16
 * channels (4x4); layer 5 adds layer 3 (4 channels, 2x2) to every second
 * pixel of the first 4 channels of layer 4. */
static void t_shortcut_across_shapes(void)
{
    cdb_network *net = cdb_network_load("tests/darknet/shortcut_shapes.cfg", NULL, 0);
    CHECK(net, "%s", cdb_last_error());
    fill_normal(net->input, (size_t)2 * net->inputs, 4, 1.f);
    cdb_network_forward(net, 0);
    const float *l0 = net->layers[0].output, *l1 = net->layers[1].output, *s2 = net->layers[2].output;
    const float *l3 = net->layers[3].output, *l4 = net->layers[4].output, *s5 = net->layers[5].output;
    int bad = 0;
    for (int b = 0; b < 2; b++)
        for (int k = 0; k < 16; k++)
            for (int j = 0; j < 4; j++)
                for (int i = 0; i < 4; i++) {
                    size_t o = (((size_t)b * 16 + k) * 4 + j) * 4 + i;
                    float want = l1[o] + (k < 8 ? l0[(((size_t)b * 8 + k) * 8 + 2 * j) * 8 + 2 * i] : 0.f);
                    bad += s2[o] != want;
                    float want5 = l4[o] + (k < 4 && j % 2 == 0 && i % 2 == 0 ? l3[(((size_t)b * 4 + k) * 2 + j / 2) * 2 + i / 2] : 0.f);
                    bad += s5[o] != want5;
                }
    free_net(net);
    CHECK(!bad, "%d outputs differ from Darknet's shortcut", bad);
}

/* dilation: each output is the sum over taps (ky, kx) of the input at
 * (y*stride + ky*d - pad*d, x*stride + kx*d - pad*d), written out here; a
 * padding that would size the output otherwise than Darknet's formula is
 * refused. */
static void t_dilation(void)
{
    const char *text = "[net]\nbatch=1\nwidth=11\nheight=9\nchannels=2\n[convolutional]\nfilters=3\nsize=3\n"
                       "stride=2\npad=1\ndilation=3\nactivation=linear\n[avgpool]\n[softmax]\n";
    cdb_network *net = net_from_text(text);
    CHECK(net, "build");
    fill_normal(net->input, (size_t)net->inputs, 8, 1.f);
    cdb_network_forward(net, 0);
    const cdb_layer *l = &net->layers[0];
    const float *w = l->params[0].value, *bias = l->params[1].value;
    CHECK(l->out_h == 5 && l->out_w == 6, "output %dx%d", l->out_h, l->out_w);
    double worst = 0;
    for (int f = 0; f < 3; f++)
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 6; x++) {
                double sum = bias[f];
                for (int c = 0; c < 2; c++)
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int iy = y * 2 + ky * 3 - 3, ix = x * 2 + kx * 3 - 3;
                            if (iy < 0 || iy >= 9 || ix < 0 || ix >= 11) continue;
                            sum += w[((f * 2 + c) * 3 + ky) * 3 + kx] * net->input[(c * 9 + iy) * 11 + ix];
                        }
                double d = fabs(l->output[(f * 5 + y) * 6 + x] - sum);
                worst = d > worst ? d : worst;
            }
    free_net(net);
    CHECK(worst < 1e-5, "dilated output off by %g", worst);
    const char *e = net_error_from_text("dil", "[net]\nbatch=1\nwidth=9\nheight=9\nchannels=1\n[convolutional]\n"
                                               "filters=2\nsize=3\ndilation=2\nactivation=linear\n[avgpool]\n[softmax]\n");
    CHECK(e && strstr(e, "dilation=2 with size=3 and padding 0") && strstr(e, "use pad=1"), "%s", e ? e : "built");
}

/* label_smooth_eps: 1 - eps on the label and eps/(K-1) elsewhere, which is
 * PyTorch's smoothing of eps K/(K-1): the targets of a training step. */
static void t_label_smooth_eps(void)
{
    cdb_network *net = net_from_text("[net]\nbatch=1\nwidth=2\nheight=2\nchannels=1\nlabel_smooth_eps=0.1\n"
                                     "[connected]\noutput=10\nactivation=linear\n[softmax]\n");
    CHECK(net, "build");
    float image[4] = {1, 2, 3, 4};
    int label = 3;
    cdb_trainer_run_step(trainer_of(net), image, &label);
    int ok = 1;
    for (int k = 0; k < 10; k++) ok &= fabsf(net->truth[k] - (k == 3 ? 0.9f : 0.1f / 9)) < 1e-7f;
    free_net(net);
    CHECK(ok, "targets are not 0.9 and 0.1/9");
    const char *msg = net_error_from_text("bad.cfg", "[net]\nbatch=1\nwidth=2\nheight=2\nchannels=1\nlabel_smooth_eps=0.1\n"
                                                     "label_smoothing=0.1\n[connected]\noutput=10\n[softmax]\n");
    CHECK(msg && strstr(msg, "not both"), "both given: %s", msg ? msg : "built");
    msg = net_error_from_text("bad.cfg", "[net]\nbatch=1\nwidth=2\nheight=2\nchannels=1\nlabel_smooth_eps=0.9\n"
                                         "[connected]\noutput=2\n[softmax]\n");
    CHECK(msg && strstr(msg, "bad.cfg:6: [net] key 'label_smooth_eps': 0.9 is out of range"), "eps 0.9: %s",
          msg ? msg : "built");
}

/* [crop]: in eval the centre window x 2 - 1; in training a window inside
 * the image, sometimes flipped, the same for the same step. */
static void t_crop(void)
{
    cdb_network *net = cdb_network_load("tests/darknet/crop.cfg", NULL, 0);
    CHECK(net, "%s", cdb_last_error());
    fill_normal(net->input, (size_t)net->batch * net->inputs, 6, 1.f);
    const cdb_layer *l = &net->layers[0];
    cdb_network_forward(net, 0);
    int bad = 0;
    for (int b = 0; b < net->batch; b++)
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 6; y++)
                for (int x = 0; x < 6; x++)
                    bad += l->output[(((size_t)b * 3 + c) * 6 + y) * 6 + x] !=
                           net->input[(((size_t)b * 3 + c) * 8 + y + 1) * 8 + x + 1] * 2.f - 1.f;
    CHECK(!bad, "eval: %d values are not the centre crop x 2 - 1", bad);
    int flips = 0, moved = 0;
    for (int s = 0; s < 8; s++) {
        net->pass.step = s;
        cdb_network_forward(net, 1);
        for (int b = 0; b < net->batch; b++) {
            /* find the window: the output's first row must be some row of the input, flipped or not */
            int found = 0;
            for (int dy = 0; dy <= 2 && !found; dy++)
                for (int dx = 0; dx <= 2 && !found; dx++)
                    for (int f = 0; f < 2 && !found; f++) {
                        int all = 1;
                        for (int y = 0; y < 6 && all; y++)
                            for (int x = 0; x < 6 && all; x++) {
                                int col = f ? 8 - dx - x - 1 : x + dx;
                                all = l->output[(((size_t)b * 3) * 6 + y) * 6 + x] ==
                                      net->input[(((size_t)b * 3) * 8 + y + dy) * 8 + col] * 2.f - 1.f;
                            }
                        if (all) {
                            found = 1;
                            flips += f;
                            moved += dy != 1 || dx != 1;
                        }
                    }
            CHECK(found, "step %d image %d: no window of the input gives the output", s, b);
        }
    }
    free_net(net);
    CHECK(flips > 0 && moved > 0, "training crops must move (%d) and flip (%d)", moved, flips);
}

void register_darknet_tests(void)
{
    test_add_tagged("darknet/[crop]: the centre in eval, random windows and flips in training", t_crop, TEST_KERNELS);
    test_add_tagged("darknet/label_smooth_eps: Darknet's targets", t_label_smooth_eps, TEST_KERNELS);
    test_add_tagged("darknet/dilation: the taps written out, inconsistent padding refused", t_dilation, TEST_KERNELS);
    test_add_tagged("darknet/shortcut across shapes: Darknet's formula", t_shortcut_across_shapes, TEST_KERNELS);
    test_add_tagged("darknet/[softmax] then [cost]: (1 + scale) x the gradient", t_cost_doubles_the_gradient, TEST_KERNELS);
    test_add_tagged("darknet/corpus cfgs have Darknet's output shapes", t_corpus_shapes, TEST_KERNELS);
    test_add_tagged("darknet/a key given twice: the first value, a warning naming both lines", t_duplicate_keys_take_the_first, TEST_KERNELS);
    test_add_tagged("darknet/darknet=1 training semantics", t_darknet_semantics, TEST_KERNELS);
    test_add_tagged("darknet/weights layouts of both forks and version 0.1", t_weights_layouts, TEST_KERNELS);
}
