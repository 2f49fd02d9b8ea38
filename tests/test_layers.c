/* Layer behaviour beyond gradients: a convolution whose batch is split into
 * several GEMM chunks gives what it gives one image at a time. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fastmath.h"
#include "gemm.h"
#include "im2col.h"
#include "conv_direct.h"
#include "convolutional_layer.h"
#include "maxpool_layer.h"
#include "shortcut_layer.h"
#include "test.h"

#define CHUNK_CFG "[net]\nbatch=%d\nwidth=32\nheight=32\nchannels=16\n" \
                  "[convolutional]\nfilters=16\nsize=3\npad=1\nactivation=linear\n[avgpool]\n[softmax]\n"

static void t_conv_chunks(void)
{
    char text[512];
    snprintf(text, sizeof(text), CHUNK_CFG, 8);
    cdb_network *all = net_from_text(text);
    snprintf(text, sizeof(text), CHUNK_CFG, 1);
    cdb_network *one = net_from_text(text);
    CHECK(all && one, "build");
    size_t per_image_ws = (size_t)(16 * 9 + 16) * 32 * 32;
    CHECK(all->workspace_floats < 8 * per_image_ws && all->workspace_floats >= 2 * per_image_ws,
          "the batch of 8 must be split into chunks of several images");
    cdb_network_enable_input_gradient(all);
    cdb_network_enable_input_gradient(one);
    size_t per_image = (size_t)all->inputs;
    fill_normal(all->input, 8 * per_image, 3, 1.f);
    for (int b = 0; b < 8; b++) all->truth[b * 16 + b] = 1;
    all->loss = 0;
    cdb_network_forward(all, 1);
    cdb_network_backward(all);
    cdb_layer *la = &all->layers[0], *lo = &one->layers[0];
    for (int b = 0; b < 8; b++) {
        memcpy(one->input, all->input + b * per_image, per_image * sizeof(float));
        memset(one->truth, 0, 16 * sizeof(float));
        one->truth[b] = 1;
        cdb_network_forward(one, 1);
        cdb_network_backward(one);
        for (int i = 0; i < lo->outputs; i++)
            CHECK(fabsf(lo->output[i] - la->output[(size_t)b * la->outputs + i]) <= 1e-5f * (1 + fabsf(lo->output[i])),
                  "image %d output %d differs", b, i);
        for (size_t i = 0; i < per_image; i++)
            CHECK(fabsf(one->input_delta[i] - 8 * all->input_delta[b * per_image + i]) <= 1e-5f * (1 + fabsf(one->input_delta[i])),
                  "image %d input gradient %zu: %g vs %g", b, i, one->input_delta[i], 8 * all->input_delta[b * per_image + i]);
    }
    /* The loss is a mean over the batch: the batch-8 gradients are 1/8 of the single-image ones. */
    for (size_t i = 0; i < la->params[0].size; i++)
        CHECK(fabsf(la->params[0].grad[i] * 8 - lo->params[0].grad[i]) <= 1e-4f * (1 + fabsf(lo->params[0].grad[i])),
              "weight gradient %zu: %g vs %g", i, la->params[0].grad[i] * 8, lo->params[0].grad[i]);
    cdb_network_free(all);
    cdb_network_free(one);
}

/* im2col against the definition, and col2im as its adjoint:
 * <im2col(x), y> = <x, col2im(y)>, over kernel sizes, strides and pads. */
static void t_im2col(void)
{
    enum { C = 2, H = 6, W = 7 };
    float im[C * H * W], back[C * H * W];
    fill_normal(im, C * H * W, 8, 1.f);
    for (int k = 1; k <= 5; k++)
        for (int s = 1; s <= 3; s++)
            for (int pad = 0; pad <= 3; pad++) {
                if (H + 2 * pad < k || W + 2 * pad < k) continue;
                int oh = (H + 2 * pad - k) / s + 1, ow = (W + 2 * pad - k) / s + 1, N = oh * ow, ld = N + 3;
                float *col = calloc((size_t)C * k * k * ld, sizeof(float)), *y = calloc((size_t)C * k * k * ld, sizeof(float));
                cdb_im2col(im, C, H, W, k, s, pad, col, ld);
                fill_normal(y, (size_t)C * k * k * ld, 9, 1.f);
                double lhs = 0, rhs = 0;
                for (int r = 0; r < C * k * k; r++)
                    for (int n = 0; n < N; n++) {
                        int c = r / (k * k), ky = (r / k) % k, kx = r % k, yy = n / ow * s + ky - pad, xx = n % ow * s + kx - pad;
                        float want = (yy >= 0 && yy < H && xx >= 0 && xx < W) ? im[(c * H + yy) * W + xx] : 0.f;
                        CHECK(col[r * ld + n] == want, "k=%d s=%d pad=%d: col[%d][%d] = %g, want %g", k, s, pad, r, n,
                              col[r * ld + n], want);
                        lhs += (double)col[r * ld + n] * y[r * ld + n];
                    }
                memset(back, 0, sizeof(back));
                cdb_col2im(y, C, H, W, k, s, pad, back, ld);
                for (int i = 0; i < C * H * W; i++) rhs += (double)im[i] * back[i];
                CHECK(fabs(lhs - rhs) < 1e-4 * (1 + fabs(lhs)), "k=%d s=%d pad=%d: col2im is not the adjoint", k, s, pad);
                free(col);
                free(y);
            }
}

/* The 2x2/2 maxpool fast path against the definition: first maximum in scan
 * order wins ties, NaN never wins, a window of NaN and -inf gives 0. */
static void t_maxpool_2x2(void)
{
    cdb_network *net = net_from_text("[net]\nbatch=2\nwidth=6\nheight=4\nchannels=3\n"
                                     "[maxpool]\nsize=2\nstride=2\n[connected]\noutput=4\nactivation=linear\n[softmax]\n");
    CHECK(net, "build");
    cdb_layer *l = &net->layers[0];
    int n = l->batch * l->inputs;
    fill_normal(net->input, (size_t)n, 5, 1.f);
    for (int i = 0; i < n; i += 7) net->input[i] = net->input[i + 1]; /* ties */
    net->input[12] = NAN;
    net->input[0] = net->input[1] = net->input[6] = NAN; /* window (0,0) of image 0 */
    net->input[7] = -INFINITY;
    cdb_network_forward(net, 1);
    const float *out = l->output;
    for (int b = 0; b < l->batch; b++)
        for (int c = 0; c < l->c; c++)
            for (int y = 0; y < l->out_h; y++)
                for (int x = 0; x < l->out_w; x++) {
                    const float *in = net->input + (size_t)b * l->inputs + (size_t)c * l->h * l->w;
                    float best = -FLT_MAX;
                    int arg = -1;
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++) {
                            int i = (2 * y + dy) * l->w + 2 * x + dx;
                            if (in[i] > best) best = in[i], arg = c * l->h * l->w + i;
                        }
                    float want = arg >= 0 ? best : 0.f;
                    size_t o = (size_t)b * l->outputs + (c * l->out_h + y) * l->out_w + x;
                    CHECK(out[o] == want, "image %d channel %d (%d,%d): %g, want %g", b, c, y, x, out[o], want);
                    CHECK(((maxpool_priv *)l->priv)->argmax[o] == arg, "image %d channel %d (%d,%d): argmax %d, want %d",
                          b, c, y, x, ((maxpool_priv *)l->priv)->argmax[o], arg);
                }
    cdb_network_free(net);
}

/* A convolution path gives what im2col gives: outputs, the input gradient
 * and the weight gradients, over several chunks and layers whose input
 * gradient feeds another. fast = 1: shifted GEMMs against im2col (expected:
 * the number of layers taking them); fast = 2: the direct kernels, expected
 * counts the layers whose forward and whose backward pass take them
 * (forward * 100 + backward). input_gradient: whether the first layer
 * computes one. */
/* The policy of the fast network in compare_conv_paths (conv_direct_cases
 * varies the slice size and Winograd). */
static conv_policy case_policy = {.direct = 1, .winograd = 1, .shift = CONV_SHIFT_AUTO, .slice_bytes = 320 << 10};

static void compare_conv_paths(const char *text, int fast, int expected, int input_gradient)
{
    cdb_network *a = net_from_text(text), *b = net_from_text(text);
    CHECK(a && b, "build");
    if (input_gradient) {
        cdb_network_enable_input_gradient(a);
        cdb_network_enable_input_gradient(b);
    }
    a->conv = case_policy;
    a->conv.direct = fast == 2;
    a->conv.shift = fast == 1 ? CONV_SHIFT_ON : CONV_SHIFT_OFF;
    a->conv.depthwise = fast == 3;
    b->conv.direct = 0; /* the reference: im2col everywhere */
    b->conv.shift = CONV_SHIFT_OFF;
    b->conv.depthwise = 0;
    int taken = 0;
    for (int li = 0; li < a->n; li++) {
        const cdb_layer *l = &a->layers[li];
        if (strcmp(l->ops->name, "convolutional")) continue;
        if (fast == 1)
            taken += cdb_convolutional_uses_shift(l, a);
        else if (fast == 3)
            taken += cdb_convolutional_uses_depthwise(l, a);
        else
            taken += 100 * cdb_convolutional_uses_direct(l, a, 0) + cdb_convolutional_uses_direct(l, a, 1);
    }
    CHECK(taken == expected, "layers taking the path: %d, want %d", taken, expected);
    size_t n_in = (size_t)a->batch * a->inputs, classes = (size_t)a->layers[a->n - 1].outputs;
    fill_normal(a->input, n_in, 21, 1.f);
    memcpy(b->input, a->input, n_in * sizeof(float));
    /* biases start at zero: give them values, so that a pass that drops
     * what it should add to shows */
    for (int li = 0; li < a->n; li++)
        for (int k = 0; k < a->layers[li].nparams; k++) {
            cdb_param *pa = &a->layers[li].params[k], *pb = &b->layers[li].params[k];
            if (!strstr(pa->name, "biases")) continue;
            fill_normal(pa->value, pa->size, 40 + li * 8 + k, 0.5f);
            memcpy(pb->value, pa->value, pa->size * sizeof(float));
        }
    for (int i = 0; i < a->batch; i++) a->truth[i * classes + i % classes] = b->truth[i * classes + i % classes] = 1;
    cdb_network_forward(a, 1);
    cdb_network_backward(a);
    cdb_network_forward(b, 1);
    cdb_network_backward(b);
    for (int li = 0; li < a->n; li++) {
        cdb_layer *la = &a->layers[li], *lb = &b->layers[li];
        for (size_t i = 0; i < (size_t)la->batch * la->outputs; i++)
            CHECK(fabsf(la->output[i] - lb->output[i]) <= 1e-4f * (1 + fabsf(lb->output[i])), "layer %d output %zu: %g vs %g",
                  li, i, la->output[i], lb->output[i]);
        for (int k = 0; k < la->nparams; k++)
            for (size_t i = 0; i < la->params[k].size; i++)
                CHECK(fabsf(la->params[k].grad[i] - lb->params[k].grad[i]) <= 1e-4f * (1 + fabsf(lb->params[k].grad[i])),
                      "layer %d parameter %d gradient %zu: %g vs %g", li, k, i, la->params[k].grad[i], lb->params[k].grad[i]);
    }
    for (size_t i = 0; input_gradient && i < n_in; i++)
        CHECK(fabsf(a->input_delta[i] - b->input_delta[i]) <= 1e-4f * (1 + fabsf(b->input_delta[i])),
              "input gradient %zu: %g vs %g", i, a->input_delta[i], b->input_delta[i]);
    cdb_network_free(a);
    cdb_network_free(b);
}

/* Depthwise layers plane by plane against im2col: 3x3 stride 1 and 2,
 * 5x5 with padding 2 on an odd non-square image, a 2x2 kernel without
 * padding, 3x3 with padding 2, and 1x1/2; then the same bits at 1 and 2
 * threads. */
static void t_conv_depthwise(void)
{
    const char *text = "[net]\nbatch=3\nwidth=13\nheight=9\nchannels=6\n"
                       "[convolutional]\nfilters=6\nsize=3\npad=1\ngroups=6\nbatch_normalize=1\nactivation=relu\n"
                       "[convolutional]\nfilters=6\nsize=3\nstride=2\npad=1\ngroups=6\nactivation=linear\n"
                       "[convolutional]\nfilters=6\nsize=5\npad=1\ngroups=6\nactivation=leaky\n"
                       "[convolutional]\nfilters=6\nsize=2\ngroups=6\nactivation=linear\n"
                       "[convolutional]\nfilters=6\nsize=3\npadding=2\ngroups=6\nactivation=linear\n"
                       "[convolutional]\nfilters=6\nsize=1\nstride=2\ngroups=6\nactivation=linear\n"
                       "[convolutional]\nfilters=12\nsize=3\npad=1\ngroups=6\nactivation=linear\n"
                       "[connected]\noutput=4\nactivation=linear\n[softmax]\n";
    compare_conv_paths(text, 3, 6, 1); /* the last (2 filters a group) stays on im2col */
    compare_conv_paths(text, 3, 6, 0);
    cdb_network *n1 = net_from_text(text), *n2 = net_from_text(text);
    CHECK(n1 && n2, "build");
    cdb_network_enable_input_gradient(n1);
    cdb_network_enable_input_gradient(n2);
    fill_normal(n1->input, (size_t)3 * n1->inputs, 8, 1.f);
    memcpy(n2->input, n1->input, (size_t)3 * n1->inputs * sizeof(float));
    for (int i = 0; i < 3; i++) n1->truth[i * 4 + i] = n2->truth[i * 4 + i] = 1;
    cdb_set_num_threads(1);
    cdb_network_forward(n1, 1);
    cdb_network_backward(n1);
    cdb_set_num_threads(2);
    cdb_network_forward(n2, 1);
    cdb_network_backward(n2);
    cdb_set_num_threads(1);
    int same = !memcmp(n1->input_delta, n2->input_delta, (size_t)3 * n1->inputs * sizeof(float));
    for (int k = 0; k < n1->nparams; k++)
        same &= !memcmp(n1->params[k]->grad, n2->params[k]->grad, n1->params[k]->size * sizeof(float));
    cdb_network_free(n1);
    cdb_network_free(n2);
    CHECK(same, "1 and 2 threads give different gradients");
}

static void t_conv_shift(void)
{
    /* 16 channels of 32x32: chunks of 3 images, so a batch of 8 is 3 + 3 + 2 */
    compare_conv_paths("[net]\nbatch=8\nwidth=32\nheight=32\nchannels=16\n"
                       "[convolutional]\nfilters=16\nsize=3\npad=1\nbatch_normalize=1\nactivation=relu\n"
                       "[avgpool]\n[softmax]\n", 1, 1, 1);
    /* 3x3 then 5x5 on 64x60 images; the 8x8 layer after the pool stays on im2col */
    compare_conv_paths("[net]\nbatch=2\nwidth=64\nheight=60\nchannels=17\n"
                       "[convolutional]\nfilters=19\nsize=3\npad=1\nactivation=leaky\n"
                       "[convolutional]\nfilters=16\nsize=5\npad=1\nactivation=linear\n"
                       "[maxpool]\nsize=8\nstride=8\n"
                       "[convolutional]\nfilters=6\nsize=3\npad=1\nactivation=linear\n"
                       "[connected]\noutput=4\nactivation=linear\n[softmax]\n", 1, 2, 1);
}

static void conv_direct_cases(void)
{
    /* 64x64 images of 32 channels: chunks of 2 images (2 + 2 + 2 + 1). In
     * order: both passes direct (Winograd); 48 filters (im2col); 48 input
     * channels (output by Winograd, backward on im2col); stride 2; 1x1. */
    const char *big = "[net]\nbatch=7\nwidth=64\nheight=64\nchannels=32\n"
                      "[convolutional]\nfilters=32\nsize=3\npad=1\nbatch_normalize=1\nactivation=relu\n"
                      "[convolutional]\nfilters=48\nsize=3\npad=1\nactivation=linear\n"
                      "[convolutional]\nfilters=64\nsize=3\npad=1\nactivation=leaky\n"
                      "[convolutional]\nfilters=64\nsize=3\nstride=2\npad=1\nactivation=linear\n"
                      "[convolutional]\nfilters=32\nsize=1\nactivation=linear\n"
                      "[avgpool]\n[softmax]\n";
    int wino = 0;
    cdb_network *n = net_from_text(big);
    CHECK(n, "build");
    n->conv = case_policy;
    for (int li = 0; li < n->n; li++)
        wino += !strcmp(n->layers[li].ops->name, "convolutional") && cdb_convolutional_uses_winograd(&n->layers[li], n);
    cdb_network_free(n);
    CHECK(wino == (case_policy.winograd ? 2 : 0), "%d layers take Winograd, want %d", wino, case_policy.winograd ? 2 : 0);
    compare_conv_paths(big, 2, 403, 1);
    compare_conv_paths(big, 2, 403, 0); /* the first layer without an input gradient */
    /* 5x5 with padding 1 on a non-square image, 3x3 with padding 2, an even
     * 2x2 kernel: every input gradient by the kernel */
    compare_conv_paths("[net]\nbatch=3\nwidth=13\nheight=9\nchannels=32\n"
                       "[convolutional]\nfilters=32\nsize=5\npadding=1\nactivation=linear\n"
                       "[convolutional]\nfilters=64\nsize=3\npadding=2\nbatch_normalize=1\nactivation=relu\n"
                       "[convolutional]\nfilters=32\nsize=2\nstride=1\nactivation=linear\n"
                       "[connected]\noutput=4\nactivation=linear\n[softmax]\n", 2, 303, 1);
    /* strides: 3x3/2 on an odd image, 1x1/2 (input pixels no tap reaches),
     * 5x5/3 with padding 2 */
    compare_conv_paths("[net]\nbatch=2\nwidth=15\nheight=11\nchannels=32\n"
                       "[convolutional]\nfilters=32\nsize=3\nstride=2\npad=1\nactivation=leaky\n"
                       "[convolutional]\nfilters=64\nsize=1\nstride=2\nbatch_normalize=1\nactivation=linear\n"
                       "[convolutional]\nfilters=32\nsize=5\nstride=3\npadding=2\nactivation=linear\n"
                       "[connected]\noutput=4\nactivation=linear\n[softmax]\n", 2, 303, 1);
}

/* The weight-gradient kernel's compute skipping: skipped channels, and
 * filters 32-63 all skipped (whole groups of cdb_cd_skip_filter_group()), are left untouched; every other entry
 * is bit-identical to the full computation. */
static void direct_weight_grad_skipping(void)
{
    enum { N = 2, C = 48, F = 96, K = 3, H = 5, PAD = 1, PH = H + 2 * PAD, OH = H };
    size_t nx = (size_t)N * C * PH * PH, ndy = (size_t)N * F * OH * OH, nw = (size_t)F * C * K * K;
    float *xb = cdb_xcalloc(nx, sizeof(float)), *dy = cdb_xcalloc(ndy, sizeof(float));
    float *full = cdb_xcalloc(nw, sizeof(float)), *part = cdb_xcalloc(nw, sizeof(float));
    fill_normal(xb, nx, 31, 1.f);
    fill_normal(dy, ndy, 32, 1.f);
    uint8_t skip_c[C], skip_f[F];
    for (int c = 0; c < C; c++) skip_c[c] = c % 3 == 0 || (c >= 16 && c < 32 && c != 20); /* block 1 keeps one */
    for (int f = 0; f < F; f++) skip_f[f] = f >= 32 && f < 64 ? 1 : f == 70;              /* group 1 skipped whole */
    size_t dy_block = (size_t)OH * OH * 16, dy_image = (size_t)(F / 16) * dy_block;
    cdb_cd_weight_grad(xb, N, C, PH, PH, dy, dy_image, dy_block, OH, F, K, 1, OH, OH, NULL, NULL, full);
    const float untouched = -12345.f;
    int computed = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t e = 0; e < nw; e++) {
            /* (F/16, C/16, K, K, 16 c, 16 f) */
            int f = (int)(e / ((size_t)(C / 16) * K * K * 256) * 16 + e % 16);
            int c = (int)(e / 256 / (K * K) % (C / 16) * 16 + e / 16 % 16);
            int skipped = skip_c[c] || (f >= 32 && f < 64);
            if (!pass) {
                part[e] = skipped ? untouched : 0.f;
                continue;
            }
            if (skipped) {
                CHECK(part[e] == untouched, "entry %zu (filter %d, channel %d) was skipped but written", e, f, c);
            } else {
                CHECK(memcmp(&part[e], &full[e], sizeof(float)) == 0, "entry %zu (filter %d, channel %d): %g, want %g", e, f,
                      c, part[e], full[e]);
                computed++;
            }
        }
        if (!pass) cdb_cd_weight_grad(xb, N, C, PH, PH, dy, dy_image, dy_block, OH, F, K, 1, OH, OH, skip_c, skip_f, part);
    }
    CHECK(computed > 0, "nothing computed");
    free(xb);
    free(dy);
    free(full);
    free(part);
}

/* The kernels' sums run in a fixed order: one and two threads give the same
 * bits (outputs, input gradient, weight gradients), on direct, strided and
 * Winograd layers with batch norm. */
static void direct_thread_independence(void)
{
    const char *text = "[net]\nbatch=3\nwidth=16\nheight=16\nchannels=32\n"
                       "[convolutional]\nfilters=64\nsize=3\npad=1\nbatch_normalize=1\nactivation=relu\n"
                       "[convolutional]\nfilters=64\nsize=3\nstride=2\npad=1\nactivation=leaky\n"
                       "[convolutional]\nfilters=32\nsize=3\npad=1\nactivation=linear\n"
                       "[convolutional]\nfilters=32\nsize=5\npad=1\nactivation=linear\n"
                       "[avgpool]\n[softmax]\n";
    cdb_network *n[2];
    for (int t = 0; t < 2; t++) {
        n[t] = net_from_text(text);
        CHECK(n[t], "build");
        cdb_network_enable_input_gradient(n[t]);
        size_t n_in = (size_t)n[t]->batch * n[t]->inputs, classes = (size_t)n[t]->layers[n[t]->n - 1].outputs;
        fill_normal(n[t]->input, n_in, 23, 1.f);
        for (int i = 0; i < n[t]->batch; i++) n[t]->truth[i * classes + i % classes] = 1;
        cdb_set_num_threads(t + 1);
        cdb_network_forward(n[t], 1);
        cdb_network_backward(n[t]);
    }
    cdb_set_num_threads(1);
    for (int li = 0; li < n[0]->n; li++) {
        cdb_layer *a = &n[0]->layers[li], *b = &n[1]->layers[li];
        CHECK(!memcmp(a->output, b->output, (size_t)a->batch * a->outputs * sizeof(float)),
              "layer %d output differs between 1 and 2 threads", li);
        for (int k = 0; k < a->nparams; k++)
            CHECK(!memcmp(a->params[k].grad, b->params[k].grad, a->params[k].size * sizeof(float)),
                  "layer %d parameter %d gradient differs between 1 and 2 threads", li, k);
    }
    CHECK(!memcmp(n[0]->input_delta, n[1]->input_delta, (size_t)n[0]->batch * n[0]->inputs * sizeof(float)),
          "input gradient differs between 1 and 2 threads");
    cdb_network_free(n[0]);
    cdb_network_free(n[1]);
}

static void t_conv_direct(void)
{
    direct_weight_grad_skipping();
    direct_thread_independence();
    conv_direct_cases();
    /* again with one channel block per slice: every pass after the first
     * adds to the output */
    case_policy.slice_bytes = 1;
    conv_direct_cases();
    case_policy.slice_bytes = 320 << 10;
    /* and with Winograd off: every 3x3 layer on the direct kernels */
    case_policy.winograd = 0;
    conv_direct_cases();
    case_policy.winograd = 1;
}

/* The fixed-order GEMM (gemm.h), in all four transpose cases and shapes
 * with edge tiles, several blocks of k and several tasks: against a double
 * reference; the same bits for a subset of its rows and columns computed
 * alone (what compute skipping does), at one and two threads, and when C
 * starts from other values only through those values. */
static void t_gemm_fixed(void)
{
    const int shapes[][3] = {{7, 9, 5}, {37, 70, 300}, {300, 150, 700}, {6, 64, 128}, {1, 1, 1}, {13, 200, 257}};
    for (int si = 0; si < 6; si++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
                int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 1;
                size_t asz = (size_t)(ta ? K : M) * lda, bsz = (size_t)(tb ? N : K) * ldb, csz = (size_t)M * ldc;
                float *A = malloc(asz * sizeof(float)), *B = malloc(bsz * sizeof(float));
                float *C0 = malloc(csz * sizeof(float)), *C1 = malloc(csz * sizeof(float)), *C2 = malloc(csz * sizeof(float));
                float *work = malloc(cdb_gemm_fixed_workspace(M, N) * 2 * sizeof(float) + 64);
                fill_normal(A, asz, 1 + si, 1.f);
                fill_normal(B, bsz, 2 + si, 1.f);
                fill_normal(C0, csz, 3 + si, 1.f);
                memcpy(C1, C0, csz * sizeof(float));
                memcpy(C2, C0, csz * sizeof(float));
                cdb_set_num_threads(1);
                cdb_gemm_fixed(ta, tb, M, N, K, A, lda, B, ldb, C1, ldc, work);
                cdb_set_num_threads(2);
                cdb_gemm_fixed(ta, tb, M, N, K, A, lda, B, ldb, C2, ldc, work);
                cdb_set_num_threads(1);
                double worst = 0;
                for (int i = 0; i < M; i++)
                    for (int j = (i * 3) % 5; j < N; j += 5) { /* a fifth of the elements: cheap under emulation */
                        double ref = C0[(size_t)i * ldc + j], mag = fabs(ref);
                        for (int k = 0; k < K; k++) {
                            double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                            double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                            ref += a * b;
                            mag += fabs(a * b);
                        }
                        double e = fabs(C1[(size_t)i * ldc + j] - ref) / mag;
                        if (!(e <= worst)) worst = e;
                    }
                CHECK(worst < 1e-6, "shape %dx%dx%d ta %d tb %d: error %.3g against double", M, N, K, ta, tb, worst);
                CHECK(!memcmp(C1, C2, csz * sizeof(float)), "shape %dx%dx%d ta %d tb %d: 1 and 2 threads differ", M, N, K, ta,
                      tb);
                /* rows 1, 4, 5, ... and columns 0, 3, 6, ... alone, through compacted copies */
                int m = 0, n = 0, rows[300], cols[200];
                for (int i = 1; i < M; i += 2) rows[m++] = i;
                for (int j = 0; j < N; j += 3) cols[n++] = j;
                if (!m) rows[m++] = 0;
                float *Ak = malloc((size_t)m * K * sizeof(float)), *Bk = malloc((size_t)n * K * sizeof(float));
                float *Ck = malloc((size_t)m * n * sizeof(float));
                for (int r = 0; r < m; r++)
                    for (int k = 0; k < K; k++)
                        Ak[(size_t)r * K + k] = ta ? A[(size_t)k * lda + rows[r]] : A[(size_t)rows[r] * lda + k];
                for (int c = 0; c < n; c++)
                    for (int k = 0; k < K; k++)
                        Bk[(size_t)k * n + c] = tb ? B[(size_t)cols[c] * ldb + k] : B[(size_t)k * ldb + cols[c]];
                for (int r = 0; r < m; r++)
                    for (int c = 0; c < n; c++) Ck[(size_t)r * n + c] = C0[(size_t)rows[r] * ldc + cols[c]];
                cdb_set_num_threads(2);
                cdb_gemm_fixed(0, 0, m, n, K, Ak, K, Bk, n, Ck, n, work);
                cdb_set_num_threads(1);
                int same = 1;
                for (int r = 0; r < m; r++)
                    for (int c = 0; c < n; c++) same &= Ck[(size_t)r * n + c] == C1[(size_t)rows[r] * ldc + cols[c]];
                CHECK(same, "shape %dx%dx%d ta %d tb %d: a subset computed alone has other bits", M, N, K, ta, tb);
                free(Ak), free(Bk), free(Ck), free(A), free(B), free(C0), free(C1), free(C2), free(work);
            }
}

/* drop_connect: in training each image's branch (the previous layer) is
 * either dropped (output = the `from` layer) or scaled by 1/(1-P); in eval
 * the plain sum. Over 64 images both happen, at about the rate P. */
static void t_drop_connect(void)
{
    cdb_network *net = net_from_text("[net]\nbatch=64\nwidth=3\nheight=2\nchannels=2\n"
                        "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n"
                        "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n"
                        "[shortcut]\nfrom=-2\ndrop_connect=0.25\n[avgpool]\n[softmax]\n");
    CHECK(net, "build");
    fill_normal(net->input, (size_t)64 * net->inputs, 5, 1.f);
    int dropped = 0, kept = 0;
    for (int train = 1; train >= 0; train--) {
        cdb_network_forward(net, train);
        const cdb_layer *a = &net->layers[0], *b = &net->layers[1], *s = &net->layers[2];
        for (int img = 0; img < 64; img++) {
            int is_dropped = 1, is_kept = 1, is_sum = 1;
            for (int i = 0; i < s->outputs; i++) {
                size_t k = (size_t)img * s->outputs + i;
                is_dropped &= s->output[k] == a->output[k];
                is_kept &= fabsf(s->output[k] - (b->output[k] / 0.75f + a->output[k])) <= 1e-6f * (1 + fabsf(s->output[k]));
                is_sum &= s->output[k] == b->output[k] + a->output[k];
            }
            if (!train) {
                CHECK(is_sum, "eval: image %d is not the plain sum", img);
                continue;
            }
            CHECK(is_dropped || is_kept, "image %d is neither dropped nor kept and scaled", img);
            dropped += is_dropped;
            kept += is_kept && !is_dropped;
        }
    }
    CHECK(dropped >= 6 && dropped <= 30 && kept + dropped == 64, "%d of 64 dropped at P=0.25", dropped);
    cdb_network_free(net);
}

void register_layer_tests(void)
{
    test_add_tagged("layers/shortcut drop_connect: per image, training only", t_drop_connect, TEST_KERNELS);
    test_add_tagged("layers/fixed-order GEMM: exact order, same bits for subsets and threads", t_gemm_fixed, TEST_KERNELS);
    test_add_tagged("layers/shifted-GEMM convolution equals im2col", t_conv_shift, TEST_KERNELS);
    test_add_tagged("layers/direct convolution equals im2col", t_conv_direct, TEST_KERNELS | TEST_SLOW);
    test_add_tagged("layers/depthwise convolution equals im2col", t_conv_depthwise, TEST_KERNELS);
    test_add_tagged("layers/maxpool 2x2 fast path against the definition", t_maxpool_2x2, TEST_KERNELS);
    test_add_tagged("layers/convolution chunks equal per-image results", t_conv_chunks, TEST_KERNELS);
    test_add_tagged("layers/im2col and col2im against their definition", t_im2col, TEST_KERNELS);
}

/* The vectorised exp and erf keep their documented accuracy. */
static void t_fast_math(void)
{
    double worst_exp = 0, worst_erf = 0;
    for (float x = -87.f; x < 88.f; x += 0.0007f) {
        double ref = exp((double)x);
        worst_exp = fmax(worst_exp, fabs(fast_expf(x) - ref) / ref);
    }
    for (float x = -7.f; x < 7.f; x += 0.00003f) worst_erf = fmax(worst_erf, fabs(fast_erff(x) - erf((double)x)));
    CHECK(worst_exp < 2e-7, "fast_expf relative error %.3g", worst_exp);
    CHECK(worst_erf < 4e-7, "fast_erff absolute error %.3g", worst_erf);
    CHECK(fast_erff(0.f) == 0.f && fast_expf(-200.f) >= 0.f && fast_expf(-200.f) < 1e-37f, "edge values");
}

void register_fastmath_tests(void) { test_add_tagged("layers/fast exp and erf accuracy", t_fast_math, TEST_KERNELS); }
