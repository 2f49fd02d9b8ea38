/* [convolutional]: grouped 2-D convolution (depthwise when groups = c), then
 * batch norm or bias, then the activation.
 *   input (batch, c, h, w), weights (filters, c/groups, size, size),
 *   output (batch, filters, out_h, out_w).
 * Three ways to the convolution on the CPU: the direct kernels on channel-
 * blocked images (conv_direct.h) for the shapes they take, else shifted
 * GEMMs for 'same' stride-1 layers on large images, else im2col + GEMM.
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
#include "conv_direct.h"
#include "dropback.h"

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
        im2col(l->input + (size_t)(first + i) * l->inputs + (size_t)c * l->h * l->w, 1, l->h, l->w, p->size, p->stride,
               p->pad, col + (size_t)c * kk * ld + (size_t)i * N, ld);
    }
}

static void fold_columns(const cdb_layer *l, const conv_priv *p, int first, int count, float *col)
{
    int N = l->out_h * l->out_w, ld = count * N, C = l->c, kk = p->size * p->size;
#pragma omp parallel for schedule(static)
    for (int ic = 0; ic < count * C; ic++) {
        int i = ic / C, c = ic % C;
        col2im(col + (size_t)c * kk * ld + (size_t)i * N, 1, l->h, l->w, p->size, p->stride, p->pad,
               l->input_delta + (size_t)(first + i) * l->inputs + (size_t)c * l->h * l->w, ld);
    }
}

/* 'Same' stride-1 convolutions without im2col (the shifted-GEMM method).
 * Each image is copied once into zero-padded planes of pw x ph pixels, the
 * images of a chunk side by side. In padded coordinates kernel offset
 * (ky, kx) is a constant shift s = (ky - pad) * pw + (kx - pad), so
 *   out = sum over offsets of W_(ky,kx) (F, C) . Xp shifted by s (C, n)
 * is size*size GEMMs on shifted views of one matrix, computed on the run of
 * padded positions from the first output pixel to the last; positions on
 * the padding are computed too and dropped. The input gradient is the same
 * sum with W^T and the output gradient shifted by -s (zero on the padding).
 * This replaces im2col's size*size copies of the input by one padded copy,
 * and the column matrix and col2im of the backward pass by nothing. The
 * weight gradient still goes through im2col (one long reduction per GEMM). */

/* Worth it with enough input channels for the GEMMs and images large enough
 * that the padded image (whose border is computed and dropped) is at most 15%
 * larger: a padded 4x4 image is 125% larger, and there the shifted GEMMs lose
 * to im2col. */
static int shift_shape(const cdb_layer *l, const conv_priv *p)
{
    long padded = (long)(l->w + 2 * p->pad) * (l->h + 2 * p->pad), pixels = (long)l->w * l->h;
    return p->groups == 1 && p->stride == 1 && p->size > 1 && p->size % 2 == 1 && p->pad == p->size / 2 &&
           l->c >= 16 && padded * 100 <= pixels * 115;
}

/* conv_shift=auto (the default) takes them on one thread only: with more,
 * OpenBLAS splits each of the size*size small GEMMs per image between
 * threads that sleep between calls, and the shifted GEMMs measured slower
 * than im2col's one large GEMM (ResNet-18's 64-filter layers, 2 threads,
 * passive waits: forward 244-284 against 210-222 ms). */
static int uses_shift(const cdb_layer *l, const conv_priv *p, const cdb_network *net)
{
    int mode = net->conv.shift;
    return (mode == CONV_SHIFT_ON || (mode == CONV_SHIFT_AUTO && get_num_threads() == 1)) && shift_shape(l, p);
}

int convolutional_uses_shift(const cdb_layer *l, const cdb_network *net) { return uses_shift(l, l->priv, net); }

typedef struct {
    int pw, plane, ld, base, n; /* padded width, pixels per padded image, row length, first output, run */
} shift_geometry;

static shift_geometry shift_geom(const cdb_layer *l, const conv_priv *p, int count)
{
    shift_geometry g;
    g.pw = l->w + 2 * p->pad;
    g.plane = g.pw * (l->h + 2 * p->pad);
    g.ld = count * g.plane;
    g.base = p->pad * g.pw + p->pad;
    g.n = (count - 1) * g.plane + (l->h - 1) * g.pw + l->w;
    return g;
}

/* Workspace: the padded input and output runs of a full chunk, then the
 * re-laid weights. */
static size_t shift_weights_offset(const cdb_layer *l, const conv_priv *p)
{
    size_t ld = (size_t)p->chunk * (l->w + 2 * p->pad) * (l->h + 2 * p->pad);
    return (size_t)(l->c + p->filters) * ld;
}

static float *shift_weights_at(const cdb_layer *l, const conv_priv *p, float *workspace)
{
    return workspace + shift_weights_offset(l, p);
}

static size_t shift_workspace(const cdb_layer *l, const conv_priv *p)
{
    return shift_weights_offset(l, p) + (size_t)p->filters * l->c * p->size * p->size;
}

/* wr (size*size, F, C) from the weights (F, C, size, size) */
static void shift_weights(const conv_priv *p, int C, float *wr)
{
    int F = p->filters, kk = p->size * p->size;
    const float *w = p->weights->value;
    for (int o = 0; o < kk; o++)
        for (int f = 0; f < F; f++)
            for (int c = 0; c < C; c++) wr[((size_t)o * F + f) * C + c] = w[((size_t)f * C + c) * kk + o];
}

/* count (channels, h, w) images of src, image_stride apart, into the
 * zero-padded planes of padded (channels, g->ld), side by side. */
static void pad_images(const cdb_layer *l, const conv_priv *p, const shift_geometry *g, const float *src,
                       size_t image_stride, int channels, int count, float *padded)
{
    int pad = p->pad, h = l->h, w = l->w;
#pragma omp parallel for schedule(static)
    for (int ic = 0; ic < count * channels; ic++) {
        int i = ic / channels, c = ic % channels;
        const float *in = src + (size_t)i * image_stride + (size_t)c * h * w;
        float *d = padded + (size_t)c * g->ld + (size_t)i * g->plane;
        memset(d, 0, (size_t)(pad * g->pw + pad) * sizeof(float));
        for (int y = 0; y < h; y++) {
            float *row = d + (size_t)(y + pad) * g->pw + pad;
            memcpy(row, in + (size_t)y * w, (size_t)w * sizeof(float));
            memset(row + w, 0, (size_t)2 * pad * sizeof(float)); /* right border, next row's left border */
        }
        memset(d + (size_t)(h + pad) * g->pw + pad, 0, (size_t)(pad * g->pw - pad) * sizeof(float));
    }
}

/* dst images (channels, h, w) = (or +=) the interior of the run y (channels, ldy) */
static void unpad_images(const cdb_layer *l, const shift_geometry *g, const float *y, int ldy,
                         int channels, int count, float *dst, size_t image_stride, int add)
{
    int h = l->h, w = l->w;
#pragma omp parallel for schedule(static)
    for (int ic = 0; ic < count * channels; ic++) {
        int i = ic / channels, c = ic % channels;
        float *out = dst + (size_t)i * image_stride + (size_t)c * h * w;
        const float *run = y + (size_t)c * ldy + (size_t)i * g->plane;
        for (int yy = 0; yy < h; yy++) {
            const float *restrict from = run + (size_t)yy * g->pw;
            float *restrict to = out + (size_t)yy * w;
            if (add)
                for (int x = 0; x < w; x++) to[x] += from[x];
            else
                memcpy(to, from, (size_t)w * sizeof(float));
        }
    }
}

/* The shifted-GEMM pass, both ways:
 *   forward (backward = 0): z = conv(input), W (F, C) per offset, shift +s;
 *   backward-data (1):      input_delta += W^T (C, F) per offset applied to
 *                           dz, shift -s. */
static void shift_pass(cdb_layer *l, cdb_network *net, int backward, const float *src, float *dst)
{
    conv_priv *p = l->priv;
    int C = l->c, F = p->filters, k = p->size;
    int in_ch = backward ? F : C, out_ch = backward ? C : F, sign = backward ? -1 : 1;
    size_t in_stride = (size_t)(backward ? l->outputs : l->inputs), out_stride = (size_t)(backward ? l->inputs : l->outputs);
    float *padded = net->workspace, *wr = shift_weights_at(l, p, net->workspace);
    shift_weights(p, C, wr);
    for (int first = 0; first < l->batch; first += p->chunk) {
        int count = l->batch - first < p->chunk ? l->batch - first : p->chunk;
        shift_geometry g = shift_geom(l, p, count);
        float *y = padded + (size_t)in_ch * g.ld;
        pad_images(l, p, &g, src + (size_t)first * in_stride, in_stride, in_ch, count, padded);
        for (int o = 0; o < k * k; o++) {
            long s = (long)(o / k - p->pad) * g.pw + (o % k - p->pad);
            gemm(backward, 0, out_ch, g.n, in_ch, 1, wr + (size_t)o * F * C, C, padded + g.base + sign * s, g.ld,
                 o ? 1 : 0, y, g.ld);
        }
        unpad_images(l, &g, y, g.ld, out_ch, count, dst + (size_t)first * out_stride, out_stride, backward);
    }
}

/* Direct convolution (conv_direct.h) for layers without groups whose input
 * channels are a multiple of 16 and filters a multiple of 32 (every build
 * has the kernels, at its vector width). The backward pass takes it too when pad < size and the input
 * channels are a multiple of 32 (or there is no input gradient); otherwise
 * it keeps im2col. */
static int direct_shape(const cdb_layer *l, const conv_priv *p)
{
    return p->groups == 1 && l->c % 16 == 0 && p->filters % 32 == 0;
}

static int uses_direct(const cdb_layer *l, const conv_priv *p, const cdb_network *net)
{
    return net->conv.direct && direct_shape(l, p);
}

static int direct_data_shape(const cdb_layer *l, const conv_priv *p)
{
    return p->pad < p->size && l->c % 32 == 0;
}

static int uses_direct_backward(const cdb_layer *l, const conv_priv *p, const cdb_network *net)
{
    return uses_direct(l, p, net) && (!l->input_delta || direct_data_shape(l, p));
}

/* Winograd F(2x2, 3x3) (conv_direct.h) for the output, the weight gradient
 * and, where the backward pass is direct, the input gradient of 3x3
 * stride-1 pad-1 layers with an even image size. */
static int uses_winograd(const cdb_layer *l, const conv_priv *p, const cdb_network *net)
{
    return net->conv.winograd && uses_direct(l, p, net) && p->size == 3 && p->stride == 1 && p->pad == 1 &&
           l->h % 2 == 0 && l->w % 2 == 0;
}

int convolutional_uses_winograd(const cdb_layer *l, const cdb_network *net) { return uses_winograd(l, l->priv, net); }

int convolutional_uses_direct(const cdb_layer *l, const cdb_network *net, int backward)
{
    return backward ? uses_direct_backward(l, l->priv, net) : uses_direct(l, l->priv, net);
}

/* Workspace of the direct path, each part 64-byte aligned: blocked weights,
 * transposed weights, weight gradient, then for a chunk of images the
 * blocked inputs, the blocked (padded) output gradients and the blocked
 * outputs or input gradients. */
typedef struct {
    float *wb, *wbt, *dwb, *xb, *dyb, *out, *u, *du, *scratch;
} direct_buffers;

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* padding of the blocked output gradient (none where the input gradient
 * does not take the kernels) */
static int direct_grad_pad(const conv_priv *p)
{
    int q = cd_grad_pad(p->size, p->stride, p->pad);
    return q > 0 ? q : 0;
}

static size_t direct_per_image(const cdb_layer *l, const conv_priv *p)
{
    int q = direct_grad_pad(p);
    size_t in = (size_t)l->c * (l->h + 2 * p->pad) * (l->w + 2 * p->pad);
    size_t grad = (size_t)p->filters * (l->out_h + 2 * q) * (l->out_w + 2 * q);
    size_t out = (size_t)l->outputs > (size_t)l->inputs ? (size_t)l->outputs : (size_t)l->inputs;
    return round16(in) + round16(grad) + round16(out);
}

/* Winograd's transformed weights and transformed images, where it applies */
static size_t winograd_floats(const cdb_layer *l, const conv_priv *p)
{
    if (!(p->size == 3 && p->stride == 1 && p->pad == 1 && l->h % 2 == 0 && l->w % 2 == 0)) return 0;
    return 2 * round16((size_t)16 * p->filters * l->c) +
           round16(cd_winograd_scratch(p->direct_chunk, l->c, p->filters, l->h, l->w));
}

static size_t direct_workspace(const cdb_layer *l, const conv_priv *p)
{
    size_t w = round16((size_t)p->filters * l->c * p->size * p->size);
    return 16 + 3 * w + direct_per_image(l, p) * p->direct_chunk + winograd_floats(l, p);
}

static direct_buffers direct_layout(const cdb_layer *l, const conv_priv *p, float *workspace, int count)
{
    direct_buffers b;
    size_t w = round16((size_t)p->filters * l->c * p->size * p->size);
    float *base = (float *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    int q = direct_grad_pad(p);
    b.wb = base;
    b.wbt = b.wb + w;
    b.dwb = b.wbt + w;
    b.xb = b.dwb + w;
    b.dyb = b.xb + round16((size_t)count * l->c * (l->h + 2 * p->pad) * (l->w + 2 * p->pad));
    b.out = b.dyb + round16((size_t)count * p->filters * (l->out_h + 2 * q) * (l->out_w + 2 * q));
    /* Winograd's parts after a full chunk's, so that they do not move */
    b.u = b.xb + direct_per_image(l, p) * p->direct_chunk;
    b.du = b.u + round16((size_t)16 * p->filters * l->c);
    b.scratch = b.du + round16((size_t)16 * p->filters * l->c);
    return b;
}

static void forward_direct(cdb_layer *l, cdb_network *net, float *z)
{
    conv_priv *p = l->priv;
    int C = l->c, F = p->filters, k = p->size, wino = uses_winograd(l, p, net);
    for (int first = 0; first < l->batch; first += p->direct_chunk) {
        int count = l->batch - first < p->direct_chunk ? l->batch - first : p->direct_chunk;
        direct_buffers b = direct_layout(l, p, net->workspace, count);
        if (!first && wino) cd_winograd_pack_weights(p->weights->value, F, C, 0, b.u);
        if (!first && !wino) cd_pack_weights(p->weights->value, F, C, k, b.wb);
        cd_pack_input(l->input + (size_t)first * l->inputs, l->inputs, count, C, l->h, l->w, p->pad, b.xb);
        if (wino)
            cd_winograd(b.xb, count, C, l->h, l->w, b.u, F, b.scratch, b.out, net->conv.slice_bytes);
        else
            cd_forward(b.xb, count, C, l->h + 2 * p->pad, l->w + 2 * p->pad, b.wb, F, k, p->stride, l->out_h,
                       l->out_w, b.out, net->conv.slice_bytes);
        cd_unpack(b.out, count, F, l->out_h * l->out_w, z + (size_t)first * l->outputs, l->outputs, 0);
    }
}

/* weight gradient and, where there is one, input gradient */
static void backward_direct(cdb_layer *l, cdb_network *net, const float *dz)
{
    conv_priv *p = l->priv;
    int C = l->c, F = p->filters, k = p->size, data = l->input_delta != NULL;
    int q = data ? direct_grad_pad(p) : 0, gh = l->out_h + 2 * q, gw = l->out_w + 2 * q;
    direct_buffers b = direct_layout(l, p, net->workspace, p->direct_chunk);
    /* compute skipping (dropback_skip_compute): dropped input channels are not
     * computed; of dropped filters, only whole groups of 32 */
    const uint8_t *skip_c, *skip_f;
    dropback_skip_lists(&net->dropback, p->weights, &skip_c, &skip_f);
    memset(b.dwb, 0, (size_t)F * C * k * k * sizeof(float));
    int wino = uses_winograd(l, p, net);
    if (wino) memset(b.du, 0, (size_t)16 * F * C * sizeof(float));
    if (data && wino) cd_winograd_pack_weights(p->weights->value, F, C, 1, b.u);
    if (data && !wino) cd_pack_weights_grad(p->weights->value, F, C, k, p->stride, b.wbt);
    for (int first = 0; first < l->batch; first += p->direct_chunk) {
        int count = l->batch - first < p->direct_chunk ? l->batch - first : p->direct_chunk;
        b = direct_layout(l, p, net->workspace, count);
        cd_pack_input(l->input + (size_t)first * l->inputs, l->inputs, count, C, l->h, l->w, p->pad, b.xb);
        cd_pack_input(dz + (size_t)first * l->outputs, l->outputs, count, F, l->out_h, l->out_w, q, b.dyb);
        if (data && wino) {
            cd_winograd(b.dyb, count, F, l->out_h, l->out_w, b.u, C, b.scratch, b.out, net->conv.slice_bytes);
            cd_unpack(b.out, count, C, l->h * l->w, l->input_delta + (size_t)first * l->inputs, l->inputs, 1);
        } else if (data) {
            cd_input_grad(b.dyb, count, F, l->out_h, l->out_w, b.wbt, C, l->h, l->w, k, p->stride, p->pad, b.out,
                          net->conv.slice_bytes);
            cd_unpack(b.out, count, C, l->h * l->w, l->input_delta + (size_t)first * l->inputs, l->inputs, 1);
        }
        const float *dy = b.dyb + ((size_t)q * gw + q) * 16;
        if (wino)
            cd_winograd_weight_grad(b.xb, count, C, l->h, l->w, dy, (size_t)F * gh * gw, (size_t)gh * gw * 16, gw, F,
                                    skip_c, skip_f, b.scratch, b.du);
        else
            cd_weight_grad(b.xb, count, C, l->h + 2 * p->pad, l->w + 2 * p->pad, dy, (size_t)F * gh * gw,
                           (size_t)gh * gw * 16, gw, F, k, p->stride, l->out_h, l->out_w, skip_c, skip_f, b.dwb);
    }
    if (wino) cd_winograd_weight_grad_finish(b.du, F, C, b.dwb);
    cd_add_weight_grad(b.dwb, F, C, k, p->weights->grad);
}

/* z = conv(input) through im2col, a chunk of images per GEMM */
static void forward_im2col(cdb_layer *l, cdb_network *net, float *z)
{
    conv_priv *p = l->priv;
    int G = p->groups, F = p->filters / G, K = l->c / G * p->size * p->size, N = l->out_h * l->out_w;
    float *col = net->workspace;
    for (int first = 0; first < l->batch; first += p->chunk) {
        int count = l->batch - first < p->chunk ? l->batch - first : p->chunk, W = count * N;
        /* a chunk of one image is already in the output layout */
        float *zc = count == 1 ? z + (size_t)first * l->outputs : chunk_outputs(l, p, net->workspace);
        fill_columns(l, p, first, count, col);
        for (int g = 0; g < G; g++)
            gemm(0, 0, F, W, K, 1, p->weights->value + (size_t)g * F * K, K, col + (size_t)g * K * W, W, 0,
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
    if (uses_direct(l, p, net))
        forward_direct(l, net, z);
    else if (uses_shift(l, p, net))
        shift_pass(l, net, 0, l->input, z);
    else
        forward_im2col(l, net, z);
    if (p->batch_normalize) {
        bn_forward(&p->bn, z, z, train);
    } else {
        for (int b = 0; b < l->batch; b++)
            for (int f = 0; f < p->filters; f++) {
                float *o = z + (size_t)b * l->outputs + (size_t)f * N, bias = p->biases->value[f];
                for (int i = 0; i < N; i++) o[i] += bias;
            }
    }
    if (p->act != ACT_LINEAR) activate_array(p->act, z, l->output, (size_t)l->batch * l->outputs);
}

static void backward(cdb_layer *l, cdb_network *net)
{
    conv_priv *p = l->priv;
    int G = p->groups, F = p->filters / G, K = l->c / G * p->size * p->size, N = l->out_h * l->out_w;
    float *dz = l->delta;
    if (p->act != ACT_LINEAR) gradient_array(p->act, p->preact, dz, dz, (size_t)l->batch * l->outputs);
    if (p->batch_normalize) {
        bn_backward(&p->bn, dz, dz);
    } else {
        for (int b = 0; b < l->batch; b++)
            for (int f = 0; f < p->filters; f++) {
                const float *d = dz + (size_t)b * l->outputs + (size_t)f * N;
                float s = 0;
                for (int i = 0; i < N; i++) s += d[i];
                p->biases->grad[f] += s;
            }
    }
    if (uses_direct_backward(l, p, net)) {
        backward_direct(l, net, dz);
        return;
    }
    float *col = net->workspace;
    int shift = uses_shift(l, p, net); /* the input gradient by shifted GEMMs, after the weight gradient */
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
            dropback_weight_grad(net, p->weights, g * F, 0, 1, F, K, W, dzc + (size_t)g * F * W, W,
                                 col + (size_t)g * K * W, W, p->weights->grad + (size_t)g * F * K, K);
        if (!l->input_delta || shift) continue;
        /* dcol_g (K, W) = W_g^T (K, F) . dz_g (F, W), then fold back per image */
        for (int g = 0; g < G; g++)
            gemm(1, 0, K, W, F, 1, p->weights->value + (size_t)g * F * K, K, dzc + (size_t)g * F * W, W, 0,
                 col + (size_t)g * K * W, W);
        fold_columns(l, p, first, count, col);
    }
    if (l->input_delta && shift) shift_pass(l, net, 1, dz, l->input_delta);
}

static void destroy(cdb_layer *l)
{
    conv_priv *p = l->priv;
    if (p->batch_normalize) bn_free(&p->bn);
    free(p->preact);
    free(p);
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    conv_priv *p = xcalloc(1, sizeof(conv_priv));
    if (!p) return -1;
    l->priv = p;
    l->destroy = destroy;
    p->filters = cfg_int(r, "filters", 1, 1, 1 << 24);
    p->size = cfg_int(r, "size", 1, 1, 1024);
    p->stride = cfg_int(r, "stride", 1, 1, 1024);
    int pad_flag = cfg_int(r, "pad", 0, 0, 1);
    p->pad = cfg_int(r, "padding", pad_flag ? p->size / 2 : 0, 0, 1024);
    p->groups = cfg_int(r, "groups", 1, 1, 1 << 20);
    p->batch_normalize = cfg_int(r, "batch_normalize", 0, 0, 1);
    p->act = layer_read_activation(r, ACT_LOGISTIC);
    float init_std = cfg_float(r, "init_std", 0.f, 0.f, 10.f);
    if (r->failed) return -1;
    if (l->c % p->groups) {
        cfg_fail(r, "groups", "input channels %d are not divisible by groups=%d", l->c, p->groups);
        return -1;
    }
    if (p->filters % p->groups) {
        cfg_fail(r, "groups", "filters=%d is not divisible by groups=%d", p->filters, p->groups);
        return -1;
    }
    if (l->h + 2 * p->pad < p->size || l->w + 2 * p->pad < p->size) {
        cfg_fail(r, "size", "kernel %d is larger than the padded input %dx%d", p->size, l->h + 2 * p->pad,
                 l->w + 2 * p->pad);
        return -1;
    }
    l->out_c = p->filters;
    l->out_h = (l->h + 2 * p->pad - p->size) / p->stride + 1;
    l->out_w = (l->w + 2 * p->pad - p->size) / p->stride + 1;
    if (layer_alloc_output(l, r)) return -1;
    int per_group = l->c / p->groups, kk = p->size * p->size;
    size_t nweights = (size_t)p->filters * per_group * kk;
    p->weights = layer_add_param(l, "weights", nweights, 1, p->filters, per_group, kk);
    dropback_read_layer_keys(r, p->weights);
    if (cfg_check_unused(r)) return -1;
    init_weights(p->weights->value, nweights, per_group * kk, init_std, net->seed, l->index);
    if (p->batch_normalize) {
        if (bn_init(&p->bn, l, p->filters, l->out_h * l->out_w, l->batch)) return -1;
        p->biases = p->bn.biases;
        layer_add_io(l, p->bn.biases->value, (size_t)p->filters);
        layer_add_io(l, p->bn.scales->value, (size_t)p->filters);
        layer_add_io(l, p->bn.rolling_mean, (size_t)p->filters);
        layer_add_io(l, p->bn.rolling_variance, (size_t)p->filters);
    } else {
        p->biases = layer_add_param(l, "biases", (size_t)p->filters, 0, 0, 0, 0);
        layer_add_io(l, p->biases->value, (size_t)p->filters);
    }
    layer_add_io(l, p->weights->value, nweights);
    if (p->act != ACT_LINEAR) p->preact = xcalloc((size_t)l->batch * l->outputs, sizeof(float));
    size_t per_image = (size_t)(l->c * kk + p->filters) * l->out_h * l->out_w;
    p->chunk = images_per_chunk(CONV_CHUNK_FLOATS, per_image, l->batch);
    p->gpu_chunk = images_per_chunk(CONV_GPU_CHUNK_FLOATS, per_image, l->batch);
    l->workspace_floats = per_image * p->chunk;
    if (shift_shape(l, p) && shift_workspace(l, p) > l->workspace_floats) l->workspace_floats = shift_workspace(l, p);
    if (direct_shape(l, p)) {
        p->direct_chunk = images_per_chunk(CONV_DIRECT_CHUNK_FLOATS, direct_per_image(l, p), l->batch);
        if (direct_workspace(l, p) > l->workspace_floats) l->workspace_floats = direct_workspace(l, p);
    }
    l->flops = (size_t)p->filters * per_group * kk * l->out_h * l->out_w;
    snprintf(l->description, sizeof(l->description), "%d %dx%d/%d pad %d%s%s %s", p->filters, p->size,
             p->size, p->stride, p->pad, p->groups > 1 ? " grouped" : "", p->batch_normalize ? " bn" : "",
             activation_name(p->act));
    return 0;
}

LAYER_GPU_TWINS(convolutional);
const layer_ops convolutional_layer_ops = {
    .name = "convolutional",
    .alias = "conv",
    .takes = LAYER_TAKES_IMAGE,
    .make = make,
    .forward = forward,
    .backward = backward,
    .forward_gpu = GPU_TWIN(convolutional_forward_gpu),
    .backward_gpu = GPU_TWIN(convolutional_backward_gpu),
};
