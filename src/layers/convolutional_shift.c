/* [convolutional] by shifted GEMMs (one of its CPU paths, chosen by the
 * network's conv_policy): see convolutional_paths.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "convolutional_paths.h"
#include "gemm.h"
#include "layers.h"

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
int cdb_conv_shift_shape(const cdb_layer *l, const conv_priv *p)
{
    long padded = (long)(l->w + 2 * p->pad) * (l->h + 2 * p->pad), pixels = (long)l->w * l->h;
    return p->groups == 1 && p->dilation == 1 && p->stride == 1 && p->size > 1 && p->size % 2 == 1 && p->pad == p->size / 2 &&
           l->c >= 16 && padded * 100 <= pixels * 115;
}

/* conv_shift=auto (the default) takes them on one thread only: with more,
 * OpenBLAS splits each of the size*size small GEMMs per image between
 * threads that sleep between calls, and the shifted GEMMs measured slower
 * than im2col's one large GEMM (ResNet-18's 64-filter layers, 2 threads,
 * passive waits: forward 244-284 against 210-222 ms). */
int cdb_conv_uses_shift(const cdb_layer *l, const conv_priv *p, const cdb_network *net)
{
    int mode = net->conv.shift;
    return (mode == CONV_SHIFT_ON || (mode == CONV_SHIFT_AUTO && cdb_get_num_threads() == 1)) && cdb_conv_shift_shape(l, p);
}

int cdb_convolutional_uses_shift(const cdb_layer *l, const cdb_network *net) { return cdb_conv_uses_shift(l, l->priv, net); }

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

size_t cdb_conv_shift_workspace(const cdb_layer *l, const conv_priv *p)
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
void cdb_conv_shift_pass(cdb_layer *l, cdb_network *net, int backward, const float *src, float *dst)
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
            cdb_gemm(backward, 0, out_ch, g.n, in_ch, 1, wr + (size_t)o * F * C, C, padded + g.base + sign * s, g.ld,
                 o ? 1 : 0, y, g.ld);
        }
        unpad_images(l, &g, y, g.ld, out_ch, count, dst + (size_t)first * out_stride, out_stride, backward);
    }
}
