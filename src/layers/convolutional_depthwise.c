/* Depthwise convolutions (groups = channels = filters: MobileNet's,
 * EfficientNet's and ShuffleNet's 3x3 and 5x5 layers) computed directly,
 * one plane at a time, with no padding copy and no im2col: the output (and
 * the stride-1 input gradient, the same loop on the flipped kernel) sums
 * all K*K taps of an interior pixel in a register, vectorised across the
 * row, and clips the border pixels; the weight gradient keeps a channel's
 * K*K tap sums in vector accumulators; the input gradient of other strides
 * scatters each tap's run of output pixels back. Through im2col a
 * depthwise layer is one GEMM of one row per channel, which runs at a
 * fraction of the speed.
 *
 * Every sum has a fixed order (the weight gradient of a channel runs over
 * the batch, then the rows, in order, in one thread), so results do not
 * depend on the thread count. The weight gradient is computed for every
 * channel; ChannelDropBack's masks are applied to it afterwards, as to
 * every gradient. */
#include <stdlib.h>
#include <string.h>

#include "convolutional_layer.h"
#include "convolutional_paths.h"
#include "layers.h"
#include "simd.h"

int cdb_conv_depthwise_shape(const cdb_layer *l, const conv_priv *p)
{
    /* kernels up to 8x8: a channel's K*K tap sums live in fixed arrays */
    return p->groups > 1 && p->groups == l->c && p->filters == l->c && p->size <= 8 && p->dilation == 1;
}

int cdb_conv_uses_depthwise(const cdb_layer *l, const conv_priv *p, const cdb_network *net)
{
    return net->conv.depthwise && cdb_conv_depthwise_shape(l, p);
}

/* The output pixels x in [*x0, *x1) whose tap kx reads inside a row of w
 * pixels: 0 <= x*stride + kx - pad < w. */
static void tap_range(int kx, int stride, int pad, int w, int out_w, int *x0, int *x1)
{
    int lo = pad - kx, hi = w - 1 + pad - kx; /* x*stride in [lo, hi] */
    *x0 = lo <= 0 ? 0 : (lo + stride - 1) / stride;
    *x1 = hi < 0 ? 0 : hi / stride + 1;
    if (*x1 > out_w) *x1 = out_w;
    if (*x0 > *x1) *x0 = *x1;
}

int cdb_convolutional_uses_depthwise(const cdb_layer *l, const cdb_network *net)
{
    return cdb_conv_uses_depthwise(l, l->priv, net);
}

/* out (OH, OW) (+)= the K x K correlation of in (H, W) with w at stride S
 * and padding P. Interior pixels (every tap inside) sum all K*K taps in a
 * register, vectorised across x; the border ones clip. K is a constant
 * where the caller's switch makes it one. */
static inline __attribute__((always_inline)) void plane(const float *in, int H, int W, const float *w, int K, int S,
                                                        int P, float *out, int OH, int OW, int accumulate)
{
    int xa = (P + S - 1) / S, xb = W - K + P >= 0 ? (W - K + P) / S + 1 : 0;
    if (xb > OW) xb = OW;
    if (xa > xb) xa = xb;
    for (int y = 0; y < OH; y++) {
        float *o = out + (size_t)y * OW;
        int iy0 = y * S - P;
        if (iy0 >= 0 && iy0 + K <= H) {
            const float *base = in + (size_t)iy0 * W; /* the tap row; x*S + kx - P >= 0 in the interior */
            if (S == 1) {
#pragma omp simd
                for (int x = xa; x < xb; x++) {
                    float acc = accumulate ? o[x] : 0.f;
                    for (int ky = 0; ky < K; ky++)
                        for (int kx = 0; kx < K; kx++) acc += w[ky * K + kx] * base[(size_t)ky * W + (x + kx - P)];
                    o[x] = acc;
                }
            } else {
                for (int x = xa; x < xb; x++) {
                    float acc = accumulate ? o[x] : 0.f;
                    for (int ky = 0; ky < K; ky++)
                        for (int kx = 0; kx < K; kx++) acc += w[ky * K + kx] * base[(size_t)ky * W + (x * S + kx - P)];
                    o[x] = acc;
                }
            }
        } else {
            /* a row whose taps reach above or below the input: every pixel clips */
            for (int x = 0; x < OW; x++) {
                float acc = accumulate ? o[x] : 0.f;
                for (int ky = 0; ky < K; ky++) {
                    int iy = iy0 + ky;
                    if (iy < 0 || iy >= H) continue;
                    for (int kx = 0; kx < K; kx++) {
                        int ix = x * S + kx - P;
                        if (ix >= 0 && ix < W) acc += w[ky * K + kx] * in[(size_t)iy * W + ix];
                    }
                }
                o[x] = acc;
            }
            continue;
        }
        /* the border pixels of a full row */
        for (int x = 0; x < OW; x++) {
            if (x == xa) x = xb;
            if (x >= OW) break;
            float acc = accumulate ? o[x] : 0.f;
            for (int ky = 0; ky < K; ky++)
                for (int kx = 0; kx < K; kx++) {
                    int ix = x * S + kx - P;
                    if (ix >= 0 && ix < W) acc += w[ky * K + kx] * in[(size_t)(iy0 + ky) * W + ix];
                }
            o[x] = acc;
        }
    }
}

/* plane() with the common kernel sizes as constants. */
static void plane_k(const float *in, int H, int W, const float *w, int K, int S, int P, float *out, int OH, int OW,
                    int accumulate)
{
    switch (K) {
    case 3: plane(in, H, W, w, 3, S, P, out, OH, OW, accumulate); break;
    case 5: plane(in, H, W, w, 5, S, P, out, OH, OW, accumulate); break;
    default: plane(in, H, W, w, K, S, P, out, OH, OW, accumulate); break;
    }
}

void cdb_conv_forward_depthwise(cdb_layer *l, cdb_network *net, float *z)
{
    (void)net;
    const conv_priv *p = l->priv;
    int C = l->c, H = l->h, W = l->w, OH = l->out_h, OW = l->out_w, K = p->size, S = p->stride, P = p->pad;
#pragma omp parallel for schedule(static)
    for (int bc = 0; bc < l->batch * C; bc++)
        plane_k(l->input + (size_t)bc * H * W, H, W, p->weights->value + (size_t)(bc % C) * K * K, K, S, P,
                z + (size_t)bc * OH * OW, OH, OW, 0);
}

/* din (H, W) += the transpose of the correlation, tap by tap: each tap
 * scatters its run of d (OH, OW) back. */
static void scatter_plane(const float *d, const float *wt, int K, int S, int P, float *din, int H, int W, int OH,
                          int OW)
{
    for (int y = 0; y < OH; y++) {
        const float *drow = d + (size_t)y * OW;
        for (int ky = 0; ky < K; ky++) {
            int iy = y * S + ky - P;
            if (iy < 0 || iy >= H) continue;
            float *irow = din + (size_t)iy * W;
            for (int kx = 0; kx < K; kx++) {
                int x0, x1;
                tap_range(kx, S, P, W, OW, &x0, &x1);
                if (x1 <= x0) continue;
                float wv = wt[ky * K + kx], *dst = irow + (x0 * S + kx - P);
                const float *dr = drow + x0;
                int n = x1 - x0;
                if (S == 1) {
#pragma omp simd
                    for (int i = 0; i < n; i++) dst[i] += wv * dr[i];
                } else {
                    for (int i = 0; i < n; i++) dst[i * S] += wv * dr[i];
                }
            }
        }
    }
}

/* One channel's weight gradient. Per image: the K*K tap sums over the
 * interior pixels of its full rows in K*K vector accumulators (VL pixels at
 * a time), the rest (the borders, rows that reach past the top or the
 * bottom, and strides over 1) in scalars; then each tap's lanes are added
 * in order into the channel's totals, in double. */
static inline __attribute__((always_inline)) void weight_grad(const cdb_layer *l, const conv_priv *p, const float *dz,
                                                              int c, int K)
{
    int C = l->c, H = l->h, W = l->w, OH = l->out_h, OW = l->out_w, S = p->stride, P = p->pad, KK = K * K;
    int xa = (P + S - 1) / S, xb = W - K + P >= 0 ? (W - K + P) / S + 1 : 0;
    if (xb > OW) xb = OW;
    if (xa > xb) xa = xb;
    double total[64] = {0};
    for (int b = 0; b < l->batch; b++) {
        const float *in = l->input + ((size_t)b * C + c) * H * W, *d = dz + ((size_t)b * C + c) * OH * OW;
        vf vacc[64];
        float acc[64];
        for (int k = 0; k < KK; k++) {
            vacc[k] = vzero();
            acc[k] = 0;
        }
        for (int y = 0; y < OH; y++) {
            const float *drow = d + (size_t)y * OW;
            int iy0 = y * S - P, full = iy0 >= 0 && iy0 + K <= H;
            int x = xa;
            if (full) {
                const float *base = in + (size_t)iy0 * W; /* the tap row; x*S + kx - P >= 0 in the interior */
                if (S == 1)
                    for (; x + VL <= xb; x += VL) {
                        vf dv = vload(drow + x);
                        for (int ky = 0; ky < K; ky++)
                            for (int kx = 0; kx < K; kx++)
                                vacc[ky * K + kx] = vfma(dv, vload(base + (size_t)ky * W + (x + kx - P)), vacc[ky * K + kx]);
                    }
                for (; x < xb; x++)
                    for (int ky = 0; ky < K; ky++)
                        for (int kx = 0; kx < K; kx++) acc[ky * K + kx] += drow[x] * base[(size_t)ky * W + (x * S + kx - P)];
            }
            /* the clipped pixels: all of a clipped row, the borders of a full one */
            for (int x = 0; x < OW; x++) {
                if (full && x == xa) x = xb;
                if (x >= OW) break;
                for (int ky = 0; ky < K; ky++) {
                    int iy = iy0 + ky;
                    if (iy < 0 || iy >= H) continue;
                    for (int kx = 0; kx < K; kx++) {
                        int ix = x * S + kx - P;
                        if (ix >= 0 && ix < W) acc[ky * K + kx] += drow[x] * in[(size_t)iy * W + ix];
                    }
                }
            }
        }
        for (int k = 0; k < KK; k++) {
            float lanes[VL];
            vstore(lanes, vacc[k]);
            double sum = acc[k];
            for (int i = 0; i < VL; i++) sum += lanes[i];
            total[k] += sum;
        }
    }
    float *dw = p->weights->grad + (size_t)c * KK;
    for (int k = 0; k < KK; k++) dw[k] += (float)total[k];
}

static void weight_grad_k(const cdb_layer *l, const conv_priv *p, const float *dz, int c)
{
    switch (p->size) {
    case 3: weight_grad(l, p, dz, c, 3); break;
    case 5: weight_grad(l, p, dz, c, 5); break;
    default: weight_grad(l, p, dz, c, p->size); break;
    }
}

void cdb_conv_backward_depthwise(cdb_layer *l, cdb_network *net, const float *dz)
{
    (void)net;
    const conv_priv *p = l->priv;
    int C = l->c, H = l->h, W = l->w, OH = l->out_h, OW = l->out_w, K = p->size, S = p->stride, P = p->pad;
    int B = l->batch;
    /* Weight gradient: one channel per thread (weight_grad). */
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++)
        weight_grad_k(l, p, dz, c);
    if (!l->input_delta) return;
    /* Input gradient. Stride 1: the correlation of dz with the flipped
     * kernel at padding K-1-P (every input pixel gathers its taps); other
     * strides: each tap scatters its run back. */
    if (S == 1 && P <= K - 1) {
#pragma omp parallel for schedule(static)
        for (int bc = 0; bc < B * C; bc++) {
            const float *wt = p->weights->value + (size_t)(bc % C) * K * K;
            float flipped[64];
            for (int i = 0; i < K * K; i++) flipped[i] = wt[K * K - 1 - i];
            plane_k(dz + (size_t)bc * OH * OW, OH, OW, flipped, K, 1, K - 1 - P, l->input_delta + (size_t)bc * H * W,
                    H, W, 1);
        }
        return;
    }
#pragma omp parallel for schedule(static)
    for (int bc = 0; bc < B * C; bc++)
        scatter_plane(dz + (size_t)bc * OH * OW, p->weights->value + (size_t)(bc % C) * K * K, K, S, P,
                      l->input_delta + (size_t)bc * H * W, H, W, OH, OW);
}
