/* [convolutional]: grouped 2-D convolution (depthwise when groups = c), then
 * batch norm or bias, then the activation. This file: the layer and its
 * im2col path; the other CPU paths in convolutional_shift.c and
 * convolutional_direct.c (convolutional_paths.h).
 *   input (batch, c, h, w), weights (filters, c/groups, size, size),
 *   output (batch, filters, out_h, out_w).
 * Four ways to the convolution on the CPU: depthwise layers plane by plane,
 * the direct kernels on channel-blocked images (conv_direct.h) for the
 * shapes they take, else shifted GEMMs for 'same' stride-1 layers on large
 * images, else im2col + GEMM.
 * Images are processed in chunks: for im2col, the columns of a chunk's images
 * sit side by side in one matrix, so each group is one large GEMM per chunk
 * rather than one small GEMM per image when images are small. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "activations.h"
#include "batchnorm_layer.h"
#include "gemm.h"
#include "im2col.h"
#include "layers.h"
#include "convolutional_layer.h"
#include "convolutional_paths.h"

/* Workspace budget per chunk, in floats (2 MiB, about one core's L2): the
 * columns stay in cache from im2col through the GEMM (and from the GEMM
 * through col2im). Measured on ResNet-18 and smallcnn, this beats 16 MiB
 * chunks by about 20%; layers with large images get chunks of one image,
 * which need no copy into or out of the chunk layout. */
#define CONV_CHUNK_FLOATS (1u << 19)
/* Images per chunk of the direct path: blocked inputs, output gradients and
 * outputs within 4 MiB */
#define CONV_DIRECT_CHUNK_FLOATS (1u << 20)
/* The GPU's im2col path (no cuDNN) keeps 16 MiB chunks: fewer, larger GEMMs. */
#define CONV_GPU_CHUNK_FLOATS (4u << 20)

/* Images whose columns and outputs fit in budget floats: 1 to batch. */
static int images_per_chunk(size_t budget, size_t per_image, int batch)
{
    size_t n = budget / per_image;
    return n < 1 ? 1 : (n > (size_t)batch ? batch : (int)n);
}

/* Workspace layout: columns (c*size*size, chunk*N), then the chunk's
 * outputs or output gradients as (filters, chunk*N). */
static float *chunk_outputs(const cdb_layer *l, const conv_priv *p, float *workspace)
{
    return workspace + (size_t)l->c * p->size * p->size * p->chunk * l->out_h * l->out_w;
}

/* Parallel over (image, channel): a chunk of one image still splits. */
static void fill_columns(const cdb_layer *l, const conv_priv *p, int first, int count, float *col)
{
    int N = l->out_h * l->out_w, ld = count * N, C = l->c, kk = p->size * p->size;
#pragma omp parallel for schedule(static)
    for (int ic = 0; ic < count * C; ic++) {
        int i = ic / C, c = ic % C;
        const float *im = l->input + (size_t)(first + i) * l->inputs + (size_t)c * l->h * l->w;
        float *dst = col + (size_t)c * kk * ld + (size_t)i * N;
        if (p->dilation > 1)
            cdb_im2col_dilated(im, 1, l->h, l->w, p->size, p->stride, p->pad * p->dilation, p->dilation, l->out_h, l->out_w,
                           dst, ld);
        else
            cdb_im2col(im, 1, l->h, l->w, p->size, p->stride, p->pad, dst, ld);
    }
}

static void fold_columns(const cdb_layer *l, const conv_priv *p, int first, int count, float *col)
{
    int N = l->out_h * l->out_w, ld = count * N, C = l->c, kk = p->size * p->size;
#pragma omp parallel for schedule(static)
    for (int ic = 0; ic < count * C; ic++) {
        int i = ic / C, c = ic % C;
        float *src = col + (size_t)c * kk * ld + (size_t)i * N;
        float *im = l->input_delta + (size_t)(first + i) * l->inputs + (size_t)c * l->h * l->w;
        if (p->dilation > 1)
            cdb_col2im_dilated(src, 1, l->h, l->w, p->size, p->stride, p->pad * p->dilation, p->dilation, l->out_h,
                           l->out_w, im, ld);
        else
            cdb_col2im(src, 1, l->h, l->w, p->size, p->stride, p->pad, im, ld);
    }
}

/* A 1x1 stride-1 convolution without padding or groups is one GEMM per
 * image on the image itself: no columns to build, no chunk to copy in or
 * out. Worth it when an image gives the GEMM enough columns; small images
 * keep the chunks, which batch several into one GEMM. */
#define POINTWISE_MIN_PIXELS 256

static int pointwise(const cdb_layer *l, const conv_priv *p)
{
    return p->size == 1 && p->dilation == 1 && p->stride == 1 && p->pad == 0 && p->groups == 1 &&
           l->out_h * l->out_w >= POINTWISE_MIN_PIXELS;
}

/* z = conv(input) through im2col, a chunk of images per GEMM */
static void forward_im2col(cdb_layer *l, cdb_network *net, float *z)
{
    conv_priv *p = l->priv;
    if (pointwise(l, p)) {
        int N = l->out_h * l->out_w;
        for (int b = 0; b < l->batch; b++)
            cdb_gemm(0, 0, p->filters, N, l->c, 1, p->weights->value, l->c, l->input + (size_t)b * l->inputs, N, 0,
                 z + (size_t)b * l->outputs, N);
        return;
    }
    int G = p->groups, F = p->filters / G, K = l->c / G * p->size * p->size, N = l->out_h * l->out_w;
    float *col = net->workspace;
    for (int first = 0; first < l->batch; first += p->chunk) {
        int count = l->batch - first < p->chunk ? l->batch - first : p->chunk, W = count * N;
        /* a chunk of one image is already in the output layout */
        float *zc = count == 1 ? z + (size_t)first * l->outputs : chunk_outputs(l, p, net->workspace);
        fill_columns(l, p, first, count, col);
        for (int g = 0; g < G; g++)
            cdb_gemm(0, 0, F, W, K, 1, p->weights->value + (size_t)g * F * K, K, col + (size_t)g * K * W, W, 0,
                 zc + (size_t)g * F * W, W);
        if (count == 1) continue;
#pragma omp parallel for schedule(static)
        for (int i = 0; i < count; i++)
            for (int f = 0; f < p->filters; f++)
                memcpy(z + (size_t)(first + i) * l->outputs + (size_t)f * N, zc + (size_t)f * W + (size_t)i * N,
                       (size_t)N * sizeof(float));
    }
}

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    conv_priv *p = l->priv;
    int N = l->out_h * l->out_w;
    float *z = p->act == ACT_LINEAR ? l->output : p->preact;
    if (cdb_conv_uses_depthwise(l, p, net))
        cdb_conv_forward_depthwise(l, net, z);
    else if (cdb_conv_uses_direct(l, p, net))
        cdb_conv_forward_direct(l, net, z);
    else if (cdb_conv_uses_shift(l, p, net))
        cdb_conv_shift_pass(l, net, 0, l->input, z);
    else
        forward_im2col(l, net, z);
    if (p->batch_normalize) {
        cdb_bn_forward(&p->bn, z, z, train);
    } else if (p->biases) {
        for (int b = 0; b < l->batch; b++)
            for (int f = 0; f < p->filters; f++) {
                float *o = z + (size_t)b * l->outputs + (size_t)f * N, bias = p->biases->value[f];
                for (int i = 0; i < N; i++) o[i] += bias;
            }
    }
    if (p->act != ACT_LINEAR) cdb_activate_array(p->act, z, l->output, (size_t)l->batch * l->outputs);
}

static void backward(cdb_layer *l, cdb_network *net)
{
    conv_priv *p = l->priv;
    int G = p->groups, F = p->filters / G, K = l->c / G * p->size * p->size, N = l->out_h * l->out_w;
    float *dz = l->delta;
    if (p->act != ACT_LINEAR) cdb_gradient_array(p->act, p->preact, dz, dz, (size_t)l->batch * l->outputs);
    if (p->batch_normalize) {
        cdb_bn_backward(&p->bn, dz, dz);
    } else if (p->biases) {
        for (int b = 0; b < l->batch; b++)
            for (int f = 0; f < p->filters; f++) {
                const float *d = dz + (size_t)b * l->outputs + (size_t)f * N;
                float s = 0;
                for (int i = 0; i < N; i++) s += d[i];
                p->biases->grad[f] += s;
            }
    }
    if (cdb_conv_uses_depthwise(l, p, net)) {
        cdb_conv_backward_depthwise(l, net, dz);
        return;
    }
    if (cdb_conv_uses_direct_backward(l, p, net)) {
        cdb_conv_backward_direct(l, net, dz);
        return;
    }
    if (pointwise(l, p)) {
        /* per image: dW += dz (F, N) . in^T (N, C); din += W^T (C, F) . dz (F, N) */
        for (int b = 0; b < l->batch; b++) {
            const float *dzb = dz + (size_t)b * l->outputs, *in = l->input + (size_t)b * l->inputs;
            cdb_dropback_weight_grad(net, p->weights, 0, 0, 1, F, K, N, dzb, N, in, N, p->weights->grad, K);
            if (l->input_delta)
                cdb_gemm(1, 0, K, N, F, 1, p->weights->value, K, dzb, N, 1, l->input_delta + (size_t)b * l->inputs, N);
        }
        return;
    }
    float *col = net->workspace;
    int shift = cdb_conv_uses_shift(l, p, net); /* the input gradient by shifted GEMMs, after the weight gradient */
    for (int first = 0; first < l->batch; first += p->chunk) {
        int count = l->batch - first < p->chunk ? l->batch - first : p->chunk, W = count * N;
        float *dzc = count == 1 ? dz + (size_t)first * l->outputs : chunk_outputs(l, p, net->workspace);
        if (count > 1) {
#pragma omp parallel for schedule(static)
            for (int i = 0; i < count; i++)
                for (int f = 0; f < p->filters; f++)
                    memcpy(dzc + (size_t)f * W + (size_t)i * N, dz + (size_t)(first + i) * l->outputs + (size_t)f * N,
                           (size_t)N * sizeof(float));
        }
        fill_columns(l, p, first, count, col);
        /* dW_g += dz_g (F, W) . col_g^T (W, K) */
        for (int g = 0; g < G; g++)
            cdb_dropback_weight_grad(net, p->weights, g * F, 0, 1, F, K, W, dzc + (size_t)g * F * W, W,
                                 col + (size_t)g * K * W, W, p->weights->grad + (size_t)g * F * K, K);
        if (!l->input_delta || shift) continue;
        /* dcol_g (K, W) = W_g^T (K, F) . dz_g (F, W), then fold back per image */
        for (int g = 0; g < G; g++)
            cdb_gemm(1, 0, K, W, F, 1, p->weights->value + (size_t)g * F * K, K, dzc + (size_t)g * F * W, W, 0,
                 col + (size_t)g * K * W, W);
        fold_columns(l, p, first, count, col);
    }
    if (l->input_delta && shift) cdb_conv_shift_pass(l, net, 1, dz, l->input_delta);
}

static void destroy(cdb_layer *l)
{
    conv_priv *p = l->priv;
    if (p->batch_normalize) cdb_bn_free(&p->bn);
    free(p->preact);
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    conv_priv *p = cdb_layer_priv(l, sizeof(conv_priv), destroy);
    if (!p) return -1;
    p->filters = cdb_cfg_int(r, "filters", 1, 1, 1 << 24);
    p->size = cdb_cfg_int(r, "size", 1, 1, 1024);
    p->stride = cdb_cfg_int(r, "stride", 1, 1, 1024);
    /* Darknet's rule: any non-zero pad= means padding = size/2, whatever
     * padding= says. */
    int pad_flag = cdb_cfg_int(r, "pad", 0, 0, 1024);
    p->pad = cdb_cfg_int(r, "padding", 0, 0, 1024);
    if (pad_flag) p->pad = p->size / 2;
    p->groups = cdb_cfg_int(r, "groups", 1, 1, 1 << 20);
    /* Darknet's (AlexeyAB's) dilation: ignored for 1x1 kernels */
    p->dilation = cdb_cfg_int(r, "dilation", 1, 1, 1024);
    if (p->size == 1) p->dilation = 1;
    p->batch_normalize = cdb_cfg_int(r, "batch_normalize", 0, 0, 1);
    /* bias=0: no bias (PyTorch's bias=False, where a batch norm follows
     * later, as in pre-activation blocks); not a Darknet key. */
    int bias = cdb_cfg_int(r, "bias", 1, 0, 1);
    p->act = cdb_layer_read_activation(r, ACT_LOGISTIC);
    float init_std = cdb_cfg_float(r, "init_std", 0.f, 0.f, 10.f);
    if (r->failed) return -1;
    if (l->c % p->groups) {
        cdb_cfg_fail(r, "groups", "input channels %d are not divisible by groups=%d", l->c, p->groups);
        return -1;
    }
    if (p->filters % p->groups) {
        cdb_cfg_fail(r, "groups", "filters=%d is not divisible by groups=%d", p->filters, p->groups);
        return -1;
    }
    if (l->h + 2 * p->pad < p->size || l->w + 2 * p->pad < p->size) {
        cdb_cfg_fail(r, "size", "kernel %d is larger than the padded input %dx%d", p->size, l->h + 2 * p->pad,
                 l->w + 2 * p->pad);
        return -1;
    }
    l->out_c = p->filters;
    l->out_h = (l->h + 2 * p->pad - p->size) / p->stride + 1;
    l->out_w = (l->w + 2 * p->pad - p->size) / p->stride + 1;
    if (p->dilation > 1) {
        /* Darknet sizes the output as without dilation and pads by pad *
         * dilation: the taps then fit exactly when pad = (size - 1) / 2 (as
         * pad=1 gives for odd sizes); otherwise Darknet's im2col fills
         * another number of columns than the layer reads, which cdbnet does
         * not copy. */
        int extent = p->dilation * (p->size - 1) + 1, padding = p->pad * p->dilation;
        int h = (l->h + 2 * padding - extent) / p->stride + 1, w = (l->w + 2 * padding - extent) / p->stride + 1;
        if (l->h + 2 * padding < extent || l->w + 2 * padding < extent || h != l->out_h || w != l->out_w) {
            cdb_cfg_fail(r, "dilation", "dilation=%d with size=%d and padding %d gives Darknet's output %dx%d but taps "
                                    "that span %dx%d: use pad=1 (padding = size/2) with an odd size",
                     p->dilation, p->size, p->pad, l->out_h, l->out_w, h, w);
            return -1;
        }
    }
    if (cdb_layer_alloc_output(l, r)) return -1;
    int per_group = l->c / p->groups, kk = p->size * p->size;
    size_t nweights = (size_t)p->filters * per_group * kk;
    p->weights = cdb_layer_add_param(l, "weights", nweights, 1, p->filters, per_group, kk);
    cdb_dropback_read_layer_keys(r, p->weights);
    if (cdb_cfg_check_unused(r)) return -1;
    cdb_init_weights(p->weights->value, nweights, per_group * kk, init_std, net->seed, l->index);
    if (p->batch_normalize) {
        if (cdb_bn_init(&p->bn, l, net, p->filters, l->out_h * l->out_w, l->batch)) return -1;
        p->biases = p->bn.biases;
        cdb_layer_add_io(l, p->bn.biases->value, (size_t)p->filters);
        cdb_layer_add_io(l, p->bn.scales->value, (size_t)p->filters);
        cdb_layer_add_io(l, p->bn.rolling_mean, (size_t)p->filters);
        cdb_layer_add_io_variance(l, p->bn.rolling_variance, (size_t)p->filters);
    } else if (bias) {
        p->biases = cdb_layer_add_param(l, "biases", (size_t)p->filters, 0, 0, 0, 0);
        cdb_layer_add_io(l, p->biases->value, (size_t)p->filters);
    }
    cdb_layer_add_io(l, p->weights->value, nweights);
    if (p->act != ACT_LINEAR) p->preact = cdb_xcalloc((size_t)l->batch * l->outputs, sizeof(float));
    size_t per_image = (size_t)(l->c * kk + p->filters) * l->out_h * l->out_w;
    p->chunk = images_per_chunk(CONV_CHUNK_FLOATS, per_image, l->batch);
    p->gpu_chunk = images_per_chunk(CONV_GPU_CHUNK_FLOATS, per_image, l->batch);
    l->workspace_floats = per_image * p->chunk;
    if (cdb_conv_shift_shape(l, p) && cdb_conv_shift_workspace(l, p) > l->workspace_floats) l->workspace_floats = cdb_conv_shift_workspace(l, p);
    if (cdb_conv_direct_shape(l, p)) {
        p->direct_chunk = images_per_chunk(CONV_DIRECT_CHUNK_FLOATS, cdb_conv_direct_per_image(l, p), l->batch);
        if (cdb_conv_direct_workspace(l, p) > l->workspace_floats) l->workspace_floats = cdb_conv_direct_workspace(l, p);
    }
    l->flops = (size_t)p->filters * per_group * kk * l->out_h * l->out_w;
    char dilated[24] = "";
    if (p->dilation > 1) snprintf(dilated, sizeof(dilated), " dil %d", p->dilation);
    snprintf(l->description, sizeof(l->description), "%d %dx%d/%d pad %d%s%s%s%s %s", p->filters, p->size,
             p->size, p->stride, p->pad, dilated, p->groups > 1 ? " grouped" : "", p->batch_normalize ? " bn" : "",
             p->batch_normalize || p->biases ? "" : " nobias", cdb_activation_name(p->act));
    return 0;
}

LAYER_OPS(convolutional, "conv", LAYER_TAKES_IMAGE, 0);
