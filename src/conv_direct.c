/* Direct and Winograd convolution on channel-blocked images: see conv_direct.h. */
#include <stdint.h>
#include <string.h>

#include "conv_direct.h"

int conv_direct_enabled = 1;
int conv_winograd_enabled = 1;
size_t cd_slice_bytes = 320 << 10;

#if CDB_CONV_DIRECT
#include <immintrin.h>

/* r[i][j] -> r[j][i] for a 16 x 16 block held in 16 registers */
static inline void transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* then r[4i + j], lane L: column 4L + j of rows 4i..4i+3 */
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    /* gather lane L of r[j], r[4 + j], r[8 + j], r[12 + j] into column 4L + j */
    for (int j = 0; j < 4; j++) {
        __m512 p0 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x44), p1 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xEE);
        __m512 p2 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x44), p3 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xEE);
        t[j] = _mm512_shuffle_f32x4(p0, p2, 0x88);
        t[4 + j] = _mm512_shuffle_f32x4(p0, p2, 0xDD);
        t[8 + j] = _mm512_shuffle_f32x4(p1, p3, 0x88);
        t[12 + j] = _mm512_shuffle_f32x4(p1, p3, 0xDD);
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

/* 16 pixels at a time, across rows: 16 channel planes in, a transpose, the
 * pixels' channel vectors out to their padded positions */
void cd_pack_input(const float *src, size_t image_stride, int count, int C, int H, int W, int pad, float *dst)
{
    int CB = C / 16, PH = H + 2 * pad, PW = W + 2 * pad, HW = H * W;
#pragma omp parallel for schedule(static)
    for (int ib = 0; ib < count * CB; ib++) {
        int i = ib / CB, cb = ib % CB;
        const float *in = src + (size_t)i * image_stride + (size_t)cb * 16 * HW;
        float *out = dst + (size_t)ib * PH * PW * 16;
        memset(out, 0, (size_t)pad * PW * 16 * sizeof(float));
        memset(out + (size_t)(pad + H) * PW * 16, 0, (size_t)pad * PW * 16 * sizeof(float));
        for (int y = 0; y < H && pad; y++) {
            float *row = out + (size_t)(y + pad) * PW * 16;
            memset(row, 0, (size_t)pad * 16 * sizeof(float));
            memset(row + (size_t)(pad + W) * 16, 0, (size_t)pad * 16 * sizeof(float));
        }
        for (int p0 = 0; p0 < HW; p0 += 16) {
            int n = HW - p0 < 16 ? HW - p0 : 16;
            __mmask16 m = (__mmask16)((1u << n) - 1);
            __m512 r[16];
            for (int c = 0; c < 16; c++) r[c] = _mm512_maskz_loadu_ps(m, in + (size_t)c * HW + p0);
            transpose16(r);
            for (int x = 0; x < n; x++) {
                int p = p0 + x;
                _mm512_storeu_ps(out + ((size_t)(p / W + pad) * PW + pad + p % W) * 16, r[x]);
            }
        }
    }
}

/* Output filters per weight group: 64 (4 blocks) where F allows, else 32. */
static int group_filters(int F) { return F % 64 ? 32 : 64; }

/* Input-gradient phases of a stride-s convolution: input row iy receives
 * from taps ky = ry + s*m, ry = (iy + pad) mod s, m < taps(ry); likewise
 * for columns. */
static int phase_taps(int k, int s, int r) { return r < k ? (k - r + s - 1) / s : 0; }

void cd_pack_weights(const float *w, int F, int C, int k, float *wb)
{
    int kk = k * k, GF = group_filters(F);
#pragma omp parallel for schedule(static)
    for (int g = 0; g < F / GF; g++)
        for (int cb = 0; cb < C / 16; cb++)
            for (int t = 0; t < kk; t++)
                for (int c = 0; c < 16; c++)
                    for (int j = 0; j < GF; j++)
                        wb[((((size_t)g * (C / 16) + cb) * kk + t) * 16 + c) * GF + j] =
                            w[((size_t)(g * GF + j) * C + cb * 16 + c) * kk + t];
}

void cd_pack_weights_grad(const float *w, int F, int C, int k, int s, float *wb)
{
    int kk = k * k, GF = group_filters(C);
    for (int ry = 0; ry < s; ry++)
        for (int rx = 0; rx < s; rx++) {
            int my = phase_taps(k, s, ry), mx = phase_taps(k, s, rx);
            /* the phase's kernel, flipped: tap (a, b) is (ry + s (my-1-a), rx + s (mx-1-b)) */
#pragma omp parallel for schedule(static)
            for (int g = 0; g < C / GF; g++)
                for (int fb = 0; fb < F / 16; fb++)
                    for (int a = 0; a < my; a++)
                        for (int b = 0; b < mx; b++)
                            for (int f = 0; f < 16; f++)
                                for (int j = 0; j < GF; j++) {
                                    int ky = ry + s * (my - 1 - a), kx = rx + s * (mx - 1 - b);
                                    wb[(((((size_t)g * (F / 16) + fb) * my + a) * mx + b) * 16 + f) * GF + j] =
                                        w[((size_t)(fb * 16 + f) * C + g * GF + j) * kk + ky * k + kx];
                                }
            wb += (size_t)F * C * my * mx;
        }
}

/* A micro-tile: P output pixels x NF blocks of 16 filters in registers,
 * out[f * out_stride + j * 16] = pixel j, filter block f; the pixel pointers
 * px are each the top-left tap of channel block 0, the weights wb one group
 * (CB, kh, kw, 16, NF * 16); accumulate: add to out. 6 x 4 measured 7% faster than 12 x 2 (fewer
 * loads per FMA: 4 weight vectors + 6 broadcasts per 24 FMAs). */
#define DEFINE_TILE(name, P, NF)                                                                                  \
    static void name(const float *const *px, const float *wb, int CB, int kh, int kw, size_t block, size_t row,   \
                     float *out, size_t out_stride, int accumulate)                                                \
    {                                                                                                              \
        __m512 a[NF][P];                                                                                           \
        for (int f = 0; f < NF; f++)                                                                               \
            for (int j = 0; j < P; j++)                                                                            \
                a[f][j] = accumulate ? _mm512_loadu_ps(out + f * out_stride + j * 16) : _mm512_setzero_ps();       \
        for (int cb = 0; cb < CB; cb++)                                                                            \
            for (int ky = 0; ky < kh; ky++)                                                                        \
                for (int kx = 0; kx < kw; kx++) {                                                                  \
                    size_t off = cb * block + ky * row + (size_t)kx * 16;                                          \
                    const float *q[P];                                                                             \
                    for (int j = 0; j < P; j++) q[j] = px[j] + off;                                                \
                    _Pragma("GCC unroll 16") for (int c = 0; c < 16; c++)                                          \
                    {                                                                                              \
                        __m512 w[NF];                                                                              \
                        for (int f = 0; f < NF; f++) w[f] = _mm512_loadu_ps(wb + 16 * f);                          \
                        wb += 16 * NF;                                                                             \
                        _Pragma("GCC unroll 12") for (int j = 0; j < P; j++)                                       \
                        {                                                                                          \
                            __m512 b = _mm512_set1_ps(q[j][c]);                                                    \
                            for (int f = 0; f < NF; f++) a[f][j] = _mm512_fmadd_ps(b, w[f], a[f][j]);              \
                        }                                                                                          \
                    }                                                                                              \
                }                                                                                                  \
        for (int f = 0; f < NF; f++)                                                                               \
            for (int j = 0; j < P; j++) _mm512_storeu_ps(out + f * out_stride + j * 16, a[f][j]);                  \
    }

DEFINE_TILE(tile_12x2, 12, 2)
DEFINE_TILE(tile_6x4, 6, 4)

/* Which pixels a pass computes: rows x cols per image; pixel (i, r, c)
 * reads the blocked input from i*src_image + src0 + r*src_row + c*src_col
 * floats on, and is pixel i*dst_image + dst0 + r*dst_row + c*dst_col of the
 * blocked output. */
typedef struct {
    int rows, cols;
    size_t src_image, src0, src_row, src_col;
    size_t dst_image, dst0, dst_row, dst_col;
} pixel_map;

/* yb (F/16, npix, 16) at the pixels of m, from count blocked images of CB
 * channel blocks (block floats each, rows of row floats) and one kernel of
 * kh x kw taps */
static void conv_tiles(const float *xb, const pixel_map *m, int count, int CB, size_t block, size_t row, int kh,
                       int kw, const float *wb, int F, float *yb, size_t npix)
{
    int GF = group_filters(F), NF = GF / 16, P = NF == 4 ? 6 : 12, groups = F / GF, per = m->rows * m->cols;
    int total = count * per, tiles = (total + P - 1) / P;
    int contiguous = m->dst0 == 0 && m->dst_col == 1 && m->dst_row == (size_t)m->cols && m->dst_image == (size_t)per;
    size_t tap_floats = (size_t)kh * kw * 16 * GF, kwts = CB * tap_floats, stride = npix * 16;
    int slice = (int)(cd_slice_bytes / (tap_floats * sizeof(float)));
    if (slice < 1) slice = 1;
    for (int c0 = 0; c0 < CB; c0 += slice) {
        int cbn = CB - c0 < slice ? CB - c0 : slice, acc = c0 > 0;
#pragma omp parallel for schedule(static)
        for (int gt = 0; gt < groups * tiles; gt++) {
            int g = gt / tiles, t0 = gt % tiles * P, n = total - t0 < P ? total - t0 : P;
            const float *px[12];
            size_t dst[12];
            int i = t0 / per, r = t0 % per / m->cols, c = t0 % m->cols; /* then stepped: no divisions */
            for (int j = 0; j < P; j++) {
                if (j >= n) { /* a short tile repeats its first pixel */
                    px[j] = px[0];
                    dst[j] = dst[0];
                    continue;
                }
                px[j] = xb + i * m->src_image + m->src0 + r * m->src_row + c * m->src_col + c0 * block;
                dst[j] = i * m->dst_image + m->dst0 + r * m->dst_row + c * m->dst_col;
                if (++c == m->cols) {
                    c = 0;
                    if (++r == m->rows) r = 0, i++;
                }
            }
            float *y = yb + ((size_t)g * NF * npix) * 16, tmp[4 * 12 * 16];
            int direct = contiguous && n == P;
            float *out = direct ? y + dst[0] * 16 : tmp;
            size_t out_stride = direct ? stride : (size_t)P * 16;
            if (!direct && acc)
                for (int f = 0; f < NF; f++)
                    for (int j = 0; j < P; j++)
                        memcpy(tmp + f * out_stride + j * 16, y + f * stride + dst[j] * 16, 16 * sizeof(float));
            const float *w = wb + g * kwts + c0 * tap_floats;
            if (NF == 4)
                tile_6x4(px, w, cbn, kh, kw, block, row, out, out_stride, acc);
            else
                tile_12x2(px, w, cbn, kh, kw, block, row, out, out_stride, acc);
            if (!direct)
                for (int f = 0; f < NF; f++)
                    for (int j = 0; j < n; j++)
                        memcpy(y + f * stride + dst[j] * 16, tmp + f * out_stride + j * 16, 16 * sizeof(float));
        }
    }
}

void cd_forward(const float *xb, int count, int C, int PH, int PW, const float *wb, int F, int k, int s, int OH, int OW,
                float *yb)
{
    size_t block = (size_t)PH * PW * 16;
    pixel_map m = {OH, OW, (C / 16) * block, 0, (size_t)s * PW * 16, (size_t)s * 16, (size_t)OH * OW, 0, (size_t)OW, 1};
    conv_tiles(xb, &m, count, C / 16, block, (size_t)PW * 16, k, k, wb, F, yb, (size_t)count * OH * OW);
}

/* Winograd F(2x2, 3x3): each 2x2 block of outputs ("tile") from the 4x4
 * input patch d under it, Y = A^T [(G g G^T) . (B^T d B)] A, so the 9
 * products per output pixel and channel become 16 per tile of 4 pixels: 16
 * independent products (one per transform element e) of the transformed
 * inputs V_e (tiles, C) with the transformed weights U_e (C, F), each a 1x1
 * convolution on the tile kernel.
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *   A^T = [1 1 1 0; 0 1 -1 -1] */
void cd_winograd_pack_weights(const float *w, int F, int C, int transpose, float *u)
{
    int Fo = transpose ? C : F, Co = transpose ? F : C, GF = group_filters(Fo), CB = Co / 16;
    size_t per_e = (size_t)Fo * Co;
    /* per (group, channel block): its 16 x GF entries of every e into a local
     * block (rows padded: the 16 e apart by a multiple of 4 KiB would share
     * cache sets), then each e's entries out in one run */
    enum { ROW = 16 * 64 + 16 };
#pragma omp parallel for schedule(static)
    for (int gc = 0; gc < Fo / GF * CB; gc++) {
        int g = gc / CB, cb = gc % CB;
        float local[16 * ROW];
        for (int c16 = 0; c16 < 16; c16++)
            for (int j = 0; j < GF; j++) {
                int fo = g * GF + j, co = cb * 16 + c16;
                /* g (3x3) of output fo, input co: w[fo][co], or w[co][fo] flipped */
                float k3[9], t[4][3];
                for (int i = 0; i < 9; i++)
                    k3[i] = transpose ? w[((size_t)co * C + fo) * 9 + 8 - i] : w[((size_t)fo * C + co) * 9 + i];
                for (int c = 0; c < 3; c++) {
                    t[0][c] = k3[c];
                    t[1][c] = 0.5f * (k3[c] + k3[3 + c] + k3[6 + c]);
                    t[2][c] = 0.5f * (k3[c] - k3[3 + c] + k3[6 + c]);
                    t[3][c] = k3[6 + c];
                }
                float *at = local + c16 * GF + j;
                for (int r = 0; r < 4; r++) {
                    at[(4 * r) * ROW] = t[r][0];
                    at[(4 * r + 1) * ROW] = 0.5f * (t[r][0] + t[r][1] + t[r][2]);
                    at[(4 * r + 2) * ROW] = 0.5f * (t[r][0] - t[r][1] + t[r][2]);
                    at[(4 * r + 3) * ROW] = t[r][2];
                }
            }
        /* packed per e as a 1x1 convolution: (Fo/GF, Co/16, 16, GF) */
        for (int e = 0; e < 16; e++)
            memcpy(u + e * per_e + (size_t)gc * 16 * GF, local + e * ROW, (size_t)16 * GF * sizeof(float));
    }
}

/* V_e (C/16, T, 16) = B^T d B for every tile, the 16 e vs floats apart */
static void winograd_input(const float *xb, int count, int C, int H, int W, float *V, size_t vs)
{
    int PW = W + 2, TH = H / 2, TW = W / 2, CB = C / 16;
    size_t T = (size_t)count * TH * TW, image = (size_t)CB * (H + 2) * PW * 16, block = (size_t)(H + 2) * PW * 16;
#pragma omp parallel for schedule(static)
    for (int it = 0; it < (int)(count * CB * TH); it++) {
        int i = it / (CB * TH), cb = it / TH % CB, ty = it % TH;
        const float *src = xb + i * image + cb * block + (size_t)2 * ty * PW * 16;
        for (int tx = 0; tx < TW; tx++) {
            __m512 d[4][4], t[4][4];
            for (int r = 0; r < 4; r++)
                for (int c = 0; c < 4; c++) d[r][c] = _mm512_loadu_ps(src + ((size_t)r * PW + 2 * tx + c) * 16);
            for (int c = 0; c < 4; c++) {
                t[0][c] = _mm512_sub_ps(d[0][c], d[2][c]);
                t[1][c] = _mm512_add_ps(d[1][c], d[2][c]);
                t[2][c] = _mm512_sub_ps(d[2][c], d[1][c]);
                t[3][c] = _mm512_sub_ps(d[1][c], d[3][c]);
            }
            size_t tile = ((size_t)i * TH + ty) * TW + tx, at = ((size_t)cb * T + tile) * 16, e_stride = vs;
            for (int r = 0; r < 4; r++) {
                _mm512_storeu_ps(V + (4 * r) * e_stride + at, _mm512_sub_ps(t[r][0], t[r][2]));
                _mm512_storeu_ps(V + (4 * r + 1) * e_stride + at, _mm512_add_ps(t[r][1], t[r][2]));
                _mm512_storeu_ps(V + (4 * r + 2) * e_stride + at, _mm512_sub_ps(t[r][2], t[r][1]));
                _mm512_storeu_ps(V + (4 * r + 3) * e_stride + at, _mm512_sub_ps(t[r][1], t[r][3]));
            }
        }
    }
}

void cd_winograd(const float *xb, int count, int C, int H, int W, const float *u, int F, float *scratch, float *yb)
{
    int TH = H / 2, TW = W / 2, CB = C / 16, FB = F / 16;
    size_t T = (size_t)count * TH * TW;
    /* the 16 products' operands 64 bytes more than T*C (T*F) apart: a
     * multiple of 4 KiB would put a tile's 16 values in one cache set */
    size_t vs = T * C + 16, ms = T * F + 16;
    float *V = scratch, *M = scratch + 16 * vs;
    winograd_input(xb, count, C, H, W, V, vs);
    /* M_e (F/16, T, 16) = V_e U_e: a 1x1 convolution whose pixels are the tiles */
    pixel_map m = {(int)T, 1, 0, 0, 16, 0, T, 0, 1, 1};
    for (int e = 0; e < 16; e++)
        conv_tiles(V + e * vs, &m, 1, CB, T * 16, 0, 1, 1, u + (size_t)e * F * C, F, M + e * ms, T);
    /* Y = A^T M A into the blocked output (F/16, count*H*W, 16) */
    size_t npix = (size_t)count * H * W;
#pragma omp parallel for schedule(static)
    for (int ft = 0; ft < (int)(FB * count * TH); ft++) {
        int fb = ft / (count * TH), i = ft / TH % count, ty = ft % TH;
        for (int tx = 0; tx < TW; tx++) {
            size_t tile = ((size_t)i * TH + ty) * TW + tx, at = ((size_t)fb * T + tile) * 16, e_stride = ms;
            __m512 mm[16], t[2][4];
            for (int e = 0; e < 16; e++) mm[e] = _mm512_loadu_ps(M + e * e_stride + at);
            for (int c = 0; c < 4; c++) {
                t[0][c] = _mm512_add_ps(_mm512_add_ps(mm[c], mm[4 + c]), mm[8 + c]);
                t[1][c] = _mm512_sub_ps(_mm512_sub_ps(mm[4 + c], mm[8 + c]), mm[12 + c]);
            }
            float *y = yb + ((size_t)fb * npix + (size_t)i * H * W + (size_t)2 * ty * W + 2 * tx) * 16;
            for (int r = 0; r < 2; r++) {
                _mm512_storeu_ps(y + (size_t)r * W * 16, _mm512_add_ps(_mm512_add_ps(t[r][0], t[r][1]), t[r][2]));
                _mm512_storeu_ps(y + ((size_t)r * W + 1) * 16, _mm512_sub_ps(_mm512_sub_ps(t[r][1], t[r][2]), t[r][3]));
            }
        }
    }
}

/* Weight gradient by Winograd: dW = G^T [sum over tiles of (A dY A^T) . V] G,
 * with V = B^T d B as in the forward pass and A dY A^T the 2x2 output
 * gradient of a tile spread to 4x4; per e a reduction over the tiles on the
 * weight-gradient kernel (so skipping as cd_weight_grad) into du, which
 * cd_winograd_weight_grad_finish takes back to 3x3 once per pass. */
void cd_winograd_weight_grad(const float *xb, int count, int C, int H, int W, const float *dy, size_t dy_image,
                             size_t dy_block, int dy_row, int F, const uint8_t *skip_c, const uint8_t *skip_f,
                             float *scratch, float *du)
{
    int TH = H / 2, TW = W / 2, FB = F / 16;
    size_t T = (size_t)count * TH * TW, vs = T * C + 16, ms = T * F + 16;
    float *V = scratch, *Y = scratch + 16 * vs;
    winograd_input(xb, count, C, H, W, V, vs);
    /* Y_e (F/16, T, 16) = A dY A^T, A = [1 0; 1 1; 1 -1; 0 -1] */
#pragma omp parallel for schedule(static)
    for (int ft = 0; ft < (int)(FB * count * TH); ft++) {
        int fb = ft / (count * TH), i = ft / TH % count, ty = ft % TH;
        const float *g = dy + i * dy_image + fb * dy_block + (size_t)2 * ty * dy_row * 16;
        for (int tx = 0; tx < TW; tx++) {
            __m512 y[2][2], t[4][2];
            for (int r = 0; r < 2; r++)
                for (int c = 0; c < 2; c++) y[r][c] = _mm512_loadu_ps(g + ((size_t)r * dy_row + 2 * tx + c) * 16);
            for (int c = 0; c < 2; c++) {
                t[0][c] = y[0][c];
                t[1][c] = _mm512_add_ps(y[0][c], y[1][c]);
                t[2][c] = _mm512_sub_ps(y[0][c], y[1][c]);
                t[3][c] = _mm512_sub_ps(_mm512_setzero_ps(), y[1][c]);
            }
            size_t at = ((size_t)fb * T + ((size_t)i * TH + ty) * TW + tx) * 16;
            for (int r = 0; r < 4; r++) {
                _mm512_storeu_ps(Y + (4 * r) * ms + at, t[r][0]);
                _mm512_storeu_ps(Y + (4 * r + 1) * ms + at, _mm512_add_ps(t[r][0], t[r][1]));
                _mm512_storeu_ps(Y + (4 * r + 2) * ms + at, _mm512_sub_ps(t[r][0], t[r][1]));
                _mm512_storeu_ps(Y + (4 * r + 3) * ms + at, _mm512_sub_ps(_mm512_setzero_ps(), t[r][1]));
            }
        }
    }
    /* dU_e (F/16, C/16, 1, 1, 16 c, 16 f) = sum over tiles: the tiles as the
     * pixels of one image row */
    size_t per_e = (size_t)F * C;
    for (int e = 0; e < 16; e++)
        cd_weight_grad(V + e * vs, 1, C, 1, (int)T, Y + e * ms, 0, T * 16, 0, F, 1, 1, 1, (int)T, skip_c, skip_f,
                       du + e * per_e);
}

void cd_winograd_weight_grad_finish(const float *du, int F, int C, float *dwb)
{
    int CB = C / 16, FB = F / 16;
    size_t per_e = (size_t)F * C;
    /* dW = G^T dU G, G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1], 16 filters a vector */
    __m512 half = _mm512_set1_ps(0.5f);
#pragma omp parallel for schedule(static)
    for (int fc = 0; fc < FB * CB; fc++)
        for (int c = 0; c < 16; c++) {
            size_t at = (size_t)fc * 256 + c * 16;
            __m512 d[16], t[3][4];
            for (int e = 0; e < 16; e++) d[e] = _mm512_loadu_ps(du + e * per_e + at);
            for (int k = 0; k < 4; k++) {
                __m512 sum = _mm512_mul_ps(half, _mm512_add_ps(d[4 + k], d[8 + k]));
                t[0][k] = _mm512_add_ps(d[k], sum);
                t[1][k] = _mm512_mul_ps(half, _mm512_sub_ps(d[4 + k], d[8 + k]));
                t[2][k] = _mm512_add_ps(sum, d[12 + k]);
            }
            float *out = dwb + (size_t)fc * 9 * 256 + c * 16;
            for (int r = 0; r < 3; r++) {
                __m512 sum = _mm512_mul_ps(half, _mm512_add_ps(t[r][1], t[r][2]));
                __m512 w0 = _mm512_add_ps(t[r][0], sum), w1 = _mm512_mul_ps(half, _mm512_sub_ps(t[r][1], t[r][2]));
                __m512 w2 = _mm512_add_ps(sum, t[r][3]);
                _mm512_storeu_ps(out + (3 * r) * 256, _mm512_add_ps(_mm512_loadu_ps(out + (3 * r) * 256), w0));
                _mm512_storeu_ps(out + (3 * r + 1) * 256, _mm512_add_ps(_mm512_loadu_ps(out + (3 * r + 1) * 256), w1));
                _mm512_storeu_ps(out + (3 * r + 2) * 256, _mm512_add_ps(_mm512_loadu_ps(out + (3 * r + 2) * 256), w2));
            }
        }
}

void cd_input_grad(const float *dyb, int count, int F, int OH, int OW, const float *wb, int C, int H, int W, int k,
                   int s, int pad, float *dxb)
{
    int q = cd_grad_pad(k, s, pad), PH = OH + 2 * q, PW = OW + 2 * q;
    size_t block = (size_t)PH * PW * 16, npix = (size_t)count * H * W;
    for (int ry = 0; ry < s; ry++)
        for (int rx = 0; rx < s; rx++) {
            int my = phase_taps(k, s, ry), mx = phase_taps(k, s, rx);
            const float *wph = wb;
            wb += (size_t)F * C * my * mx;
            /* input rows iy = iy0 + s*a with (iy + pad) mod s = ry; output row (iy + pad - ry)/s */
            int iy0 = ((ry - pad) % s + s) % s, ix0 = ((rx - pad) % s + s) % s;
            int rows = iy0 < H ? (H - iy0 + s - 1) / s : 0, cols = ix0 < W ? (W - ix0 + s - 1) / s : 0;
            if (!rows || !cols) continue;
            int ay0 = (iy0 + pad - ry) / s, ax0 = (ix0 + pad - rx) / s;
            if (!my || !mx) { /* no tap reaches these pixels */
#pragma omp parallel for schedule(static)
                for (int i = 0; i < count; i++)
                    for (int cb = 0; cb < C / 16; cb++)
                        for (int a = 0; a < rows; a++)
                            for (int b = 0; b < cols; b++)
                                memset(dxb + (cb * npix + (size_t)i * H * W + (size_t)(iy0 + s * a) * W + ix0 + s * b) * 16,
                                       0, 16 * sizeof(float));
                continue;
            }
            pixel_map m = {rows,
                           cols,
                           (F / 16) * block,
                           ((size_t)(ay0 - (my - 1) + q) * PW + (size_t)(ax0 - (mx - 1) + q)) * 16,
                           (size_t)PW * 16,
                           16,
                           (size_t)H * W,
                           (size_t)iy0 * W + ix0,
                           (size_t)s * W,
                           (size_t)s};
            conv_tiles(dyb, &m, count, F / 16, block, (size_t)PW * 16, my, mx, wph, C, dxb, npix);
        }
}

void cd_unpack(const float *yb, int count, int F, int HW, float *dst, size_t image_stride, int add)
{
    int FB = F / 16;
    size_t npix = (size_t)count * HW;
#pragma omp parallel for schedule(static)
    for (int ib = 0; ib < count * FB; ib++) {
        int i = ib / FB, fb = ib % FB;
        const float *in = yb + ((size_t)fb * npix + (size_t)i * HW) * 16;
        float *out = dst + (size_t)i * image_stride + (size_t)fb * 16 * HW;
        for (int p0 = 0; p0 < HW; p0 += 16) {
            int n = HW - p0 < 16 ? HW - p0 : 16;
            __mmask16 m = (__mmask16)((1u << n) - 1);
            __m512 r[16];
            for (int x = 0; x < 16; x++) r[x] = x < n ? _mm512_loadu_ps(in + (size_t)(p0 + x) * 16) : _mm512_setzero_ps();
            transpose16(r);
            for (int f = 0; f < 16; f++) {
                float *o = out + (size_t)f * HW + p0;
                __m512 v = add ? _mm512_add_ps(_mm512_maskz_loadu_ps(m, o), r[f]) : r[f];
                _mm512_mask_storeu_ps(o, m, v);
            }
        }
    }
}

void cd_weight_grad(const float *xb, int count, int C, int PH, int PW, const float *dy, size_t dy_image,
                    size_t dy_block, int dy_row, int F, int k, int s, int OH, int OW, const uint8_t *skip_c,
                    const uint8_t *skip_f, float *dwb)
{
    int CB = C / 16, FP = F / 32, kk = k * k;
    size_t block = (size_t)PH * PW * 16, image = (size_t)CB * block;
    /* a task: two filter blocks x up to 8 of the computed channels of one
     * channel block, every tap */
#pragma omp parallel for schedule(static)
    for (int task = 0; task < FP * CB * 2; task++) {
        int fp = task / (CB * 2), cb = task / 2 % CB, half = task % 2;
        int list[16], kept = 0, idx[8];
        for (int c = 0; c < 16; c++)
            if (!skip_c || !skip_c[cb * 16 + c]) list[kept++] = c;
        int n = kept - half * 8 < 8 ? kept - half * 8 : 8, fkept = 0;
        for (int f = 0; f < 32; f++) fkept += !skip_f || !skip_f[fp * 32 + f];
        if (n <= 0 || !fkept) continue;
        for (int c = 0; c < 8; c++) idx[c] = list[half * 8 + (c < n ? c : n - 1)]; /* a short task repeats its last */
        for (int t = 0; t < kk; t++) {
            int ky = t / k, kx = t % k;
            float *d0 = dwb + (((size_t)2 * fp * CB + cb) * kk + t) * 256, *d1 = d0 + (size_t)CB * kk * 256;
            __m512 a0[8], a1[8];
            for (int c = 0; c < 8; c++) {
                a0[c] = _mm512_loadu_ps(d0 + idx[c] * 16);
                a1[c] = _mm512_loadu_ps(d1 + idx[c] * 16);
            }
            for (int i = 0; i < count; i++) {
                const float *xi = xb + (size_t)i * image + (size_t)cb * block;
                const float *g0i = dy + i * dy_image + (size_t)2 * fp * dy_block, *g1i = g0i + dy_block;
                for (int oy = 0; oy < OH; oy++) {
                    const float *xr = xi + ((size_t)(oy * s + ky) * PW + kx) * 16;
                    const float *g0 = g0i + (size_t)oy * dy_row * 16, *g1 = g1i + (size_t)oy * dy_row * 16;
                    for (int ox = 0; ox < OW; ox++) {
                        __m512 v0 = _mm512_loadu_ps(g0 + (size_t)ox * 16), v1 = _mm512_loadu_ps(g1 + (size_t)ox * 16);
                        const float *xp = xr + (size_t)ox * s * 16;
#pragma GCC unroll 8
                        for (int c = 0; c < 8; c++) {
                            __m512 b = _mm512_set1_ps(xp[idx[c]]);
                            a0[c] = _mm512_fmadd_ps(b, v0, a0[c]);
                            a1[c] = _mm512_fmadd_ps(b, v1, a1[c]);
                        }
                    }
                }
            }
            for (int c = 0; c < n; c++) {
                _mm512_storeu_ps(d0 + idx[c] * 16, a0[c]);
                _mm512_storeu_ps(d1 + idx[c] * 16, a1[c]);
            }
        }
    }
}

void cd_add_weight_grad(const float *dwb, int F, int C, int k, float *grad)
{
    int CB = C / 16, kk = k * k;
    /* dwb in order; the entries of grad written per (fb, cb) fit in L1 */
#pragma omp parallel for schedule(static)
    for (int fc = 0; fc < F / 16 * CB; fc++) {
        int fb = fc / CB, cb = fc % CB;
        const float *in = dwb + (size_t)fc * kk * 256;
        for (int t = 0; t < kk; t++)
            for (int c = 0; c < 16; c++)
                for (int f = 0; f < 16; f++)
                    grad[((size_t)(fb * 16 + f) * C + cb * 16 + c) * kk + t] += in[((size_t)t * 16 + c) * 16 + f];
    }
}

#endif
