/* Direct convolution on channel-blocked images: see conv_direct.h. */
#include <string.h>

#include "conv_direct.h"

#if CDB_CONV_DIRECT
#include <immintrin.h>

#define TILE 12 /* output pixels per micro-tile: 12 x 2 accumulators of 16 filters */

void cd_pack_input(const float *src, size_t image_stride, int count, int C, int H, int W, int pad, float *dst)
{
    int CB = C / 16, PH = H + 2 * pad, PW = W + 2 * pad;
    size_t plane = (size_t)H * W;
    __m512i planes = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                        _mm512_set1_epi32((int)plane));
#pragma omp parallel for schedule(static)
    for (int ib = 0; ib < count * CB; ib++) {
        int i = ib / CB, cb = ib % CB;
        const float *in = src + (size_t)i * image_stride + (size_t)cb * 16 * plane;
        float *out = dst + (size_t)ib * PH * PW * 16;
        memset(out, 0, (size_t)pad * PW * 16 * sizeof(float));
        memset(out + (size_t)(pad + H) * PW * 16, 0, (size_t)pad * PW * 16 * sizeof(float));
        for (int y = 0; y < H; y++) {
            float *row = out + (size_t)(y + pad) * PW * 16;
            memset(row, 0, (size_t)pad * 16 * sizeof(float));
            memset(row + (size_t)(pad + W) * 16, 0, (size_t)pad * 16 * sizeof(float));
            for (int x = 0; x < W; x++)
                _mm512_storeu_ps(row + (size_t)(pad + x) * 16, _mm512_i32gather_ps(planes, in + (size_t)y * W + x, 4));
        }
    }
}

void cd_pack_weights(const float *w, int F, int C, int k, int transpose, float *wb)
{
    int Fo = transpose ? C : F, Co = transpose ? F : C, kk = k * k;
#pragma omp parallel for schedule(static)
    for (int fp = 0; fp < Fo / 32; fp++)
        for (int cb = 0; cb < Co / 16; cb++)
            for (int t = 0; t < kk; t++)
                for (int c = 0; c < 16; c++)
                    for (int j = 0; j < 32; j++) {
                        int fo = fp * 32 + j, co = cb * 16 + c;
                        float v = transpose ? w[((size_t)co * C + fo) * kk + (kk - 1 - t)] : w[((size_t)fo * C + co) * kk + t];
                        wb[((((size_t)fp * (Co / 16) + cb) * kk + t) * 16 + c) * 32 + j] = v;
                    }
}

/* out0/out1 (TILE pixels x 16 filters each) = the tile at pixel pointers px
 * (each the top-left tap of channel block 0) against one pair of filter
 * blocks wb (C/16, k, k, 16, 32) */
static void forward_tile(const float *const *px, const float *wb, int CB, int k, size_t block, size_t row, float *out0,
                         float *out1)
{
    __m512 a0[TILE], a1[TILE];
    for (int j = 0; j < TILE; j++) a0[j] = a1[j] = _mm512_setzero_ps();
    for (int cb = 0; cb < CB; cb++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                size_t off = cb * block + ky * row + (size_t)kx * 16;
                const float *q[TILE];
                for (int j = 0; j < TILE; j++) q[j] = px[j] + off;
#pragma GCC unroll 16
                for (int c = 0; c < 16; c++) {
                    __m512 w0 = _mm512_loadu_ps(wb), w1 = _mm512_loadu_ps(wb + 16);
                    wb += 32;
#pragma GCC unroll 12
                    for (int j = 0; j < TILE; j++) {
                        __m512 b = _mm512_set1_ps(q[j][c]);
                        a0[j] = _mm512_fmadd_ps(b, w0, a0[j]);
                        a1[j] = _mm512_fmadd_ps(b, w1, a1[j]);
                    }
                }
            }
    for (int j = 0; j < TILE; j++) {
        _mm512_storeu_ps(out0 + j * 16, a0[j]);
        _mm512_storeu_ps(out1 + j * 16, a1[j]);
    }
}

void cd_forward(const float *xb, int count, int C, int PH, int PW, const float *wb, int F, int k, int s, int OH, int OW,
                float *yb)
{
    int CB = C / 16, FP = F / 32, npix = count * OH * OW, tiles = (npix + TILE - 1) / TILE;
    size_t block = (size_t)PH * PW * 16, image = (size_t)CB * block, row = (size_t)PW * 16, kw = (size_t)CB * k * k * 16 * 32;
#pragma omp parallel for schedule(static)
    for (int ft = 0; ft < FP * tiles; ft++) {
        int fp = ft / tiles, t0 = ft % tiles * TILE, n = npix - t0 < TILE ? npix - t0 : TILE;
        const float *px[TILE];
        for (int j = 0; j < TILE; j++) {
            int p = t0 + (j < n ? j : 0), i = p / (OH * OW), oy = p % (OH * OW) / OW, ox = p % OW;
            px[j] = xb + (size_t)i * image + ((size_t)oy * s * PW + (size_t)ox * s) * 16;
        }
        float *y0 = yb + ((size_t)2 * fp * npix + t0) * 16, *y1 = y0 + (size_t)npix * 16;
        if (n == TILE) {
            forward_tile(px, wb + fp * kw, CB, k, block, row, y0, y1);
        } else {
            float t[2][TILE * 16];
            forward_tile(px, wb + fp * kw, CB, k, block, row, t[0], t[1]);
            memcpy(y0, t[0], (size_t)n * 16 * sizeof(float));
            memcpy(y1, t[1], (size_t)n * 16 * sizeof(float));
        }
    }
}

void cd_unpack(const float *yb, int count, int F, int HW, float *dst, size_t image_stride, int add)
{
    int FB = F / 16;
    size_t npix = (size_t)count * HW;
    __m512i pixels = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                        _mm512_set1_epi32(16));
#pragma omp parallel for schedule(static)
    for (int ib = 0; ib < count * FB; ib++) {
        int i = ib / FB, fb = ib % FB;
        const float *in = yb + ((size_t)fb * npix + (size_t)i * HW) * 16;
        float *out = dst + (size_t)i * image_stride + (size_t)fb * 16 * HW;
        for (int f = 0; f < 16; f++) {
            float *o = out + (size_t)f * HW;
            int p = 0;
            for (; p + 16 <= HW; p += 16) {
                __m512 v = _mm512_i32gather_ps(pixels, in + (size_t)p * 16 + f, 4);
                _mm512_storeu_ps(o + p, add ? _mm512_add_ps(_mm512_loadu_ps(o + p), v) : v);
            }
            for (; p < HW; p++) o[p] = add ? o[p] + in[(size_t)p * 16 + f] : in[(size_t)p * 16 + f];
        }
    }
}

void cd_weight_grad(const float *xb, int count, int C, int PH, int PW, const float *dy, size_t dy_image,
                    size_t dy_block, int dy_row, int F, int k, int s, int OH, int OW, float *dwb)
{
    int CB = C / 16, FB = F / 16, kk = k * k;
    size_t block = (size_t)PH * PW * 16, image = (size_t)CB * block;
#pragma omp parallel for schedule(static)
    for (int fc = 0; fc < FB * CB; fc++) {
        int fb = fc / CB, cb = fc % CB;
        for (int t = 0; t < kk; t++) {
            int ky = t / k, kx = t % k;
            float *d = dwb + ((size_t)fc * kk + t) * 256;
            __m512 acc[16];
            for (int c = 0; c < 16; c++) acc[c] = _mm512_loadu_ps(d + c * 16);
            for (int i = 0; i < count; i++) {
                const float *xi = xb + (size_t)i * image + (size_t)cb * block, *di = dy + i * dy_image + fb * dy_block;
                for (int oy = 0; oy < OH; oy++) {
                    const float *xr = xi + ((size_t)(oy * s + ky) * PW + kx) * 16, *dr = di + (size_t)oy * dy_row * 16;
                    for (int ox = 0; ox < OW; ox++) {
                        __m512 g = _mm512_loadu_ps(dr + (size_t)ox * 16);
                        const float *xp = xr + (size_t)ox * s * 16;
#pragma GCC unroll 16
                        for (int c = 0; c < 16; c++) acc[c] = _mm512_fmadd_ps(_mm512_set1_ps(xp[c]), g, acc[c]);
                    }
                }
            }
            for (int c = 0; c < 16; c++) _mm512_storeu_ps(d + c * 16, acc[c]);
        }
    }
}

void cd_add_weight_grad(const float *dwb, int F, int C, int k, float *grad)
{
    int CB = C / 16, kk = k * k;
#pragma omp parallel for schedule(static)
    for (int f = 0; f < F; f++)
        for (int c = 0; c < C; c++)
            for (int t = 0; t < kk; t++)
                grad[((size_t)f * C + c) * kk + t] +=
                    dwb[((((size_t)(f / 16) * CB + c / 16) * kk + t) * 16 + c % 16) * 16 + f % 16];
}

#endif
