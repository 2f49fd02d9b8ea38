/* Direct and Winograd convolution on channel-blocked images: see conv_direct.h. */
#include <stdint.h>
#include <string.h>

#include "conv_direct.h"
#include "simd.h"


/* A block of 16 channels (or filters) is NB vectors. */
#define NB (16 / VL)

const char *cdb_cd_kernels_isa(void) { return SIMD_ISA; }
size_t cdb_cd_kernels_vector_bytes(void) { return sizeof(vf); }

#if VL == 16

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

#endif

/* One channel block: its 16 planes of H x W (in) into the interior of its
 * padded block (out, rows of PW pixels of 16 channels). With AVX-512 16
 * pixels at a time, across rows, through a register transpose; otherwise
 * element by element (the compiler vectorises what it can). */
static void pack_block(const float *in, int H, int W, int pad, int PW, float *out)
{
    int HW = H * W;
#if VL == 16
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
#else
    for (int y = 0; y < H; y++)
        for (int x0 = 0; x0 < W; x0 += 16) {
            int n = W - x0 < 16 ? W - x0 : 16;
            float *o = out + ((size_t)(y + pad) * PW + pad + x0) * 16;
            for (int c = 0; c < 16; c++) {
                const float *r = in + (size_t)c * HW + (size_t)y * W + x0;
                for (int x = 0; x < n; x++) o[x * 16 + c] = r[x];
            }
        }
#endif
}

void cdb_cd_pack_input(const float *src, size_t image_stride, int count, int C, int H, int W, int pad, float *dst)
{
    int CB = C / 16, PH = H + 2 * pad, PW = W + 2 * pad, HW = H * W;
#pragma omp parallel for schedule(static)
    for (int ib = 0; ib < count * CB; ib++) {
        int i = ib / CB, cb = ib % CB;
        const float *in = src + (size_t)i * image_stride + (size_t)cb * 16 * HW;
        float *out = dst + (size_t)ib * PH * PW * 16;
        /* the padding: top and bottom rows, then each row's two ends */
        memset(out, 0, (size_t)pad * PW * 16 * sizeof(float));
        memset(out + (size_t)(pad + H) * PW * 16, 0, (size_t)pad * PW * 16 * sizeof(float));
        for (int y = 0; y < H && pad; y++) {
            float *row = out + (size_t)(y + pad) * PW * 16;
            memset(row, 0, (size_t)pad * 16 * sizeof(float));
            memset(row + (size_t)(pad + W) * 16, 0, (size_t)pad * 16 * sizeof(float));
        }
        pack_block(in, H, W, pad, PW, out);
    }
}

/* Output filters per weight group: 64 (4 blocks) where F allows, else 32. */
static int group_filters(int F) { return F % 64 ? 32 : 64; }

/* Input-gradient phases of a stride-s convolution: input row iy receives
 * from taps ky = ry + s*m, ry = (iy + pad) mod s, m < taps(ry); likewise
 * for columns. */
static int phase_taps(int k, int s, int r) { return r < k ? (k - r + s - 1) / s : 0; }

void cdb_cd_pack_weights(const float *w, int F, int C, int k, float *wb)
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

void cdb_cd_pack_weights_grad(const float *w, int F, int C, int k, int s, float *wb)
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

/* A micro-tile: P output pixels x TNF blocks of 16 filters in registers,
 * out[f * out_stride + j * 16] = pixel j, filter block f; the pixel pointers
 * px are each the top-left tap of channel block 0, the weights wb the
 * tile's first filter in one group (CB, kh, kw, 16, wstride floats per
 * channel); accumulate: add to out. With AVX-512 6 x 4 measured 7% faster
 * than 12 x 2 (fewer loads per FMA: 4 weight vectors + 6 broadcasts per 24
 * FMAs); with 16 registers (AVX2) 6 pixels x 1 block of two vectors keeps
 * 12 accumulators. */
#define DEFINE_TILE(name, P, TNF)                                                                                 \
    static void name(const float *const *px, const float *wb, size_t wstride, int CB, int kh, int kw,            \
                     size_t block, size_t row, float *out, size_t out_stride, int accumulate)                      \
    {                                                                                                              \
        vf a[TNF * NB][P];                                                                                         \
        for (int f = 0; f < TNF * NB; f++)                                                                         \
            for (int j = 0; j < P; j++)                                                                            \
                a[f][j] = accumulate ? vload(out + f / NB * out_stride + j * 16 + f % NB * VL) : vzero();          \
        for (int cb = 0; cb < CB; cb++)                                                                            \
            for (int ky = 0; ky < kh; ky++)                                                                        \
                for (int kx = 0; kx < kw; kx++) {                                                                  \
                    size_t off = cb * block + ky * row + (size_t)kx * 16;                                          \
                    const float *q[P];                                                                             \
                    for (int j = 0; j < P; j++) q[j] = px[j] + off;                                                \
                    _Pragma("GCC unroll 16") for (int c = 0; c < 16; c++)                                          \
                    {                                                                                              \
                        vf w[TNF * NB];                                                                            \
                        for (int f = 0; f < TNF * NB; f++) w[f] = vload(wb + f * VL);                              \
                        wb += wstride;                                                                             \
                        _Pragma("GCC unroll 12") for (int j = 0; j < P; j++)                                       \
                        {                                                                                          \
                            vf b = vset1(q[j][c]);                                                                 \
                            for (int f = 0; f < TNF * NB; f++) a[f][j] = vfma(b, w[f], a[f][j]);                   \
                        }                                                                                          \
                    }                                                                                              \
                }                                                                                                  \
        for (int f = 0; f < TNF * NB; f++)                                                                         \
            for (int j = 0; j < P; j++) vstore(out + f / NB * out_stride + j * 16 + f % NB * VL, a[f][j]);         \
    }

#if VL == 16
DEFINE_TILE(tile_12x2, 12, 2)
DEFINE_TILE(tile_6x4, 6, 4)
#elif VL == 8 || defined(__ARM_NEON)
DEFINE_TILE(tile_px1, 6, 1) /* 12 accumulators of 8 (AVX2), 24 of 4 (NEON, 32 registers) */
#define TILE_PX 6
#else
DEFINE_TILE(tile_px1, 3, 1) /* 12 accumulators of 4 */
#define TILE_PX 3
#endif

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
/* E independent products in one parallel region (Winograd's 16), product e
 * reading xb + e*xs and wb + e*ws, writing yb + e*ys */
static void conv_tiles_e(int E, const float *xb, size_t xs, const pixel_map *m, int count, int CB, size_t block,
                         size_t row, int kh, int kw, const float *wb, size_t ws, int F, float *yb, size_t ys,
                         size_t npix, size_t slice_bytes)
{
    int GF = group_filters(F), NF = GF / 16, groups = F / GF, per = m->rows * m->cols;
#if VL == 16
    int TNF = NF, P = NF == 4 ? 6 : 12; /* a tile covers its whole group */
#else
    int TNF = 1, P = TILE_PX; /* a tile covers one block of its group */
#endif
    int subs = NF / TNF, total = count * per, tiles = (total + P - 1) / P;
    int contiguous = m->dst0 == 0 && m->dst_col == 1 && m->dst_row == (size_t)m->cols && m->dst_image == (size_t)per;
    size_t tap_floats = (size_t)kh * kw * 16 * GF, kwts = CB * tap_floats, stride = npix * 16;
    int slice = (int)(slice_bytes / (tap_floats * sizeof(float)));
    if (slice < 1) slice = 1;
    for (int c0 = 0; c0 < CB; c0 += slice) {
        int cbn = CB - c0 < slice ? CB - c0 : slice, acc = c0 > 0;
        long per_e = (long)groups * subs * tiles;
#pragma omp parallel for schedule(static)
        for (long egt = 0; egt < E * per_e; egt++) {
            int e = (int)(egt / per_e), gt = (int)(egt % per_e);
            int g = gt / (subs * tiles), sub = gt / tiles % subs, t0 = gt % tiles * P, n = total - t0 < P ? total - t0 : P;
            const float *px[12] = {0};
            size_t dst[12] = {0};
            int i = t0 / per, r = t0 % per / m->cols, c = t0 % m->cols; /* then stepped: no divisions */
            for (int j = 0; j < P; j++) {
                if (j >= n) { /* a short tile repeats its first pixel */
                    px[j] = px[0];
                    dst[j] = dst[0];
                    continue;
                }
                px[j] = xb + e * xs + i * m->src_image + m->src0 + r * m->src_row + c * m->src_col + c0 * block;
                dst[j] = i * m->dst_image + m->dst0 + r * m->dst_row + c * m->dst_col;
                if (++c == m->cols) {
                    c = 0;
                    if (++r == m->rows) r = 0, i++;
                }
            }
            float *y = yb + e * ys + ((size_t)(g * NF + sub * TNF) * npix) * 16, tmp[4 * 12 * 16];
            int direct = contiguous && n == P;
            float *out = direct ? y + dst[0] * 16 : tmp;
            size_t out_stride = direct ? stride : (size_t)P * 16;
            if (!direct && acc)
                for (int f = 0; f < TNF; f++)
                    for (int j = 0; j < P; j++)
                        memcpy(tmp + f * out_stride + j * 16, y + f * stride + dst[j] * 16, 16 * sizeof(float));
            const float *w = wb + e * ws + g * kwts + c0 * tap_floats + sub * TNF * 16;
#if VL == 16
            if (NF == 4)
                tile_6x4(px, w, GF, cbn, kh, kw, block, row, out, out_stride, acc);
            else
                tile_12x2(px, w, GF, cbn, kh, kw, block, row, out, out_stride, acc);
#else
            tile_px1(px, w, GF, cbn, kh, kw, block, row, out, out_stride, acc);
#endif
            if (!direct)
                for (int f = 0; f < TNF; f++)
                    for (int j = 0; j < n; j++)
                        memcpy(y + f * stride + dst[j] * 16, tmp + f * out_stride + j * 16, 16 * sizeof(float));
        }
    }
}

static void conv_tiles(const float *xb, const pixel_map *m, int count, int CB, size_t block, size_t row, int kh,
                       int kw, const float *wb, int F, float *yb, size_t npix, size_t slice_bytes)
{
    conv_tiles_e(1, xb, 0, m, count, CB, block, row, kh, kw, wb, 0, F, yb, 0, npix, slice_bytes);
}

void cdb_cd_forward(const float *xb, int count, int C, int PH, int PW, const float *wb, int F, int k, int s, int OH, int OW,
                float *yb, size_t slice_bytes)
{
    size_t block = (size_t)PH * PW * 16;
    pixel_map m = {OH, OW, (C / 16) * block, 0, (size_t)s * PW * 16, (size_t)s * 16, (size_t)OH * OW, 0, (size_t)OW, 1};
    conv_tiles(xb, &m, count, C / 16, block, (size_t)PW * 16, k, k, wb, F, yb, (size_t)count * OH * OW, slice_bytes);
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
void cdb_cd_winograd_pack_weights(const float *w, int F, int C, int transpose, float *u)
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
        for (int tx = 0; tx < TW; tx++)
            for (int h = 0; h < 16; h += VL) { /* the block's NB vectors */
            vf d[4][4], t[4][4];
            for (int r = 0; r < 4; r++)
                for (int c = 0; c < 4; c++) d[r][c] = vload(src + ((size_t)r * PW + 2 * tx + c) * 16 + h);
            for (int c = 0; c < 4; c++) {
                t[0][c] = vsub(d[0][c], d[2][c]);
                t[1][c] = vadd(d[1][c], d[2][c]);
                t[2][c] = vsub(d[2][c], d[1][c]);
                t[3][c] = vsub(d[1][c], d[3][c]);
            }
            size_t tile = ((size_t)i * TH + ty) * TW + tx, at = ((size_t)cb * T + tile) * 16, e_stride = vs;
            for (int r = 0; r < 4; r++) {
                vstore(V + (4 * r) * e_stride + at + h, vsub(t[r][0], t[r][2]));
                vstore(V + (4 * r + 1) * e_stride + at + h, vadd(t[r][1], t[r][2]));
                vstore(V + (4 * r + 2) * e_stride + at + h, vsub(t[r][2], t[r][1]));
                vstore(V + (4 * r + 3) * e_stride + at + h, vsub(t[r][1], t[r][3]));
            }
        }
    }
}

void cdb_cd_winograd(const float *xb, int count, int C, int H, int W, const float *u, int F, float *scratch, float *yb,
                 size_t slice_bytes)
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
    conv_tiles_e(16, V, vs, &m, 1, CB, T * 16, 0, 1, 1, u, (size_t)F * C, F, M, ms, T, slice_bytes);
    /* Y = A^T M A into the blocked output (F/16, count*H*W, 16) */
    size_t npix = (size_t)count * H * W;
#pragma omp parallel for schedule(static)
    for (int ft = 0; ft < (int)(FB * count * TH); ft++) {
        int fb = ft / (count * TH), i = ft / TH % count, ty = ft % TH;
        for (int tx = 0; tx < TW; tx++)
            for (int h = 0; h < 16; h += VL) { /* the block's NB vectors */
            size_t tile = ((size_t)i * TH + ty) * TW + tx, at = ((size_t)fb * T + tile) * 16, e_stride = ms;
            vf mm[16], t[2][4];
            for (int e = 0; e < 16; e++) mm[e] = vload(M + e * e_stride + at + h);
            for (int c = 0; c < 4; c++) {
                t[0][c] = vadd(vadd(mm[c], mm[4 + c]), mm[8 + c]);
                t[1][c] = vsub(vsub(mm[4 + c], mm[8 + c]), mm[12 + c]);
            }
            float *y = yb + ((size_t)fb * npix + (size_t)i * H * W + (size_t)2 * ty * W + 2 * tx) * 16;
            for (int r = 0; r < 2; r++) {
                vstore(y + (size_t)r * W * 16 + h, vadd(vadd(t[r][0], t[r][1]), t[r][2]));
                vstore(y + ((size_t)r * W + 1) * 16 + h, vsub(vsub(t[r][1], t[r][2]), t[r][3]));
            }
        }
    }
}

static void weight_grad_e(int E, const float *xb, size_t xs, int count, int C, int PH, int PW, const float *dy,
                          size_t ys, size_t dy_image, size_t dy_block, int dy_row, int F, int k, int s, int OH, int OW,
                          const uint8_t *skip_c, const uint8_t *skip_f, float *dwb, size_t ws);

/* Weight gradient by Winograd: dW = G^T [sum over tiles of (A dY A^T) . V] G,
 * with V = B^T d B as in the forward pass and A dY A^T the 2x2 output
 * gradient of a tile spread to 4x4; per e a reduction over the tiles on the
 * weight-gradient kernel (so skipping as cdb_cd_weight_grad) into du, which
 * cdb_cd_winograd_weight_grad_finish takes back to 3x3 once per pass. */
void cdb_cd_winograd_weight_grad(const float *xb, int count, int C, int H, int W, const float *dy, size_t dy_image,
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
        for (int tx = 0; tx < TW; tx++)
            for (int h = 0; h < 16; h += VL) { /* the block's NB vectors */
            vf y[2][2], t[4][2];
            for (int r = 0; r < 2; r++)
                for (int c = 0; c < 2; c++) y[r][c] = vload(g + ((size_t)r * dy_row + 2 * tx + c) * 16 + h);
            for (int c = 0; c < 2; c++) {
                t[0][c] = y[0][c];
                t[1][c] = vadd(y[0][c], y[1][c]);
                t[2][c] = vsub(y[0][c], y[1][c]);
                t[3][c] = vsub(vzero(), y[1][c]);
            }
            size_t at = ((size_t)fb * T + ((size_t)i * TH + ty) * TW + tx) * 16;
            for (int r = 0; r < 4; r++) {
                vstore(Y + (4 * r) * ms + at + h, t[r][0]);
                vstore(Y + (4 * r + 1) * ms + at + h, vadd(t[r][0], t[r][1]));
                vstore(Y + (4 * r + 2) * ms + at + h, vsub(t[r][0], t[r][1]));
                vstore(Y + (4 * r + 3) * ms + at + h, vsub(vzero(), t[r][1]));
            }
        }
    }
    /* dU_e (F/16, C/16, 1, 1, 16 c, 16 f) = sum over tiles: the tiles as the
     * pixels of one image row */
    size_t per_e = (size_t)F * C;
    weight_grad_e(16, V, vs, 1, C, 1, (int)T, Y, ms, 0, T * 16, 0, F, 1, 1, 1, (int)T, skip_c, skip_f, du, per_e);
}

void cdb_cd_winograd_weight_grad_finish(const float *du, int F, int C, float *dwb)
{
    int CB = C / 16, FB = F / 16;
    size_t per_e = (size_t)F * C;
    /* dW = G^T dU G, G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1], 16 filters a vector */
    vf half = vset1(0.5f);
#pragma omp parallel for schedule(static)
    for (int fc = 0; fc < FB * CB; fc++)
        for (int c = 0; c < 16; c++)
            for (int h = 0; h < 16; h += VL) { /* 16 filters: NB vectors */
            size_t at = (size_t)fc * 256 + c * 16;
            vf d[16], t[3][4];
            for (int e = 0; e < 16; e++) d[e] = vload(du + e * per_e + at + h);
            for (int k = 0; k < 4; k++) {
                vf sum = vmul(half, vadd(d[4 + k], d[8 + k]));
                t[0][k] = vadd(d[k], sum);
                t[1][k] = vmul(half, vsub(d[4 + k], d[8 + k]));
                t[2][k] = vadd(sum, d[12 + k]);
            }
            float *out = dwb + (size_t)fc * 9 * 256 + c * 16;
            for (int r = 0; r < 3; r++) {
                vf sum = vmul(half, vadd(t[r][1], t[r][2]));
                vf w0 = vadd(t[r][0], sum), w1 = vmul(half, vsub(t[r][1], t[r][2]));
                vf w2 = vadd(sum, t[r][3]);
                vstore(out + (3 * r) * 256 + h, vadd(vload(out + (3 * r) * 256 + h), w0));
                vstore(out + (3 * r + 1) * 256 + h, vadd(vload(out + (3 * r + 1) * 256 + h), w1));
                vstore(out + (3 * r + 2) * 256 + h, vadd(vload(out + (3 * r + 2) * 256 + h), w2));
            }
        }
}

void cdb_cd_input_grad(const float *dyb, int count, int F, int OH, int OW, const float *wb, int C, int H, int W, int k,
                   int s, int pad, float *dxb, size_t slice_bytes)
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
            conv_tiles(dyb, &m, count, F / 16, block, (size_t)PW * 16, my, mx, wph, C, dxb, npix, slice_bytes);
        }
}

void cdb_cd_unpack(const float *yb, int count, int F, int HW, float *dst, size_t image_stride, int add)
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
#if VL == 16
            __mmask16 m = (__mmask16)((1u << n) - 1);
            __m512 r[16];
            for (int x = 0; x < 16; x++) r[x] = x < n ? _mm512_loadu_ps(in + (size_t)(p0 + x) * 16) : _mm512_setzero_ps();
            transpose16(r);
            for (int f = 0; f < 16; f++) {
                float *o = out + (size_t)f * HW + p0;
                __m512 v = add ? _mm512_add_ps(_mm512_maskz_loadu_ps(m, o), r[f]) : r[f];
                _mm512_mask_storeu_ps(o, m, v);
            }
#else
            for (int f = 0; f < 16; f++) {
                float *o = out + (size_t)f * HW + p0;
                const float *q = in + (size_t)p0 * 16 + f;
                if (add)
                    for (int x = 0; x < n; x++) o[x] += q[x * 16];
                else
                    for (int x = 0; x < n; x++) o[x] = q[x * 16];
            }
#endif
        }
    }
}

/* A weight-gradient task: WG_FB blocks of 16 filters x up to WG_CPT of the
 * computed channels of one channel block, every tap; its accumulators
 * (WG_CPT x WG_FB x NB vectors) stay in registers over every pixel. */
#if VL == 16
#define WG_FB 2
#define WG_CPT 8 /* 16 accumulators + 2 gradient vectors + a broadcast */
#elif VL == 8 || defined(__ARM_NEON)
#define WG_FB 1
#define WG_CPT 6 /* 12 of 8 (AVX2), 24 of 4 (NEON) */
#else
#define WG_FB 1
#define WG_CPT 3 /* 12 of 4 */
#endif
#define WG_PARTS ((16 + WG_CPT - 1) / WG_CPT)

int cdb_cd_skip_filter_group(void) { return 16 * WG_FB; }

/* E independent weight gradients in one parallel region (Winograd's 16),
 * product e reading xb + e*xs and dy + e*ys, adding to dwb + e*ws */
static void weight_grad_e(int E, const float *xb, size_t xs, int count, int C, int PH, int PW, const float *dy,
                          size_t ys, size_t dy_image, size_t dy_block, int dy_row, int F, int k, int s, int OH, int OW,
                          const uint8_t *skip_c, const uint8_t *skip_f, float *dwb, size_t ws)
{
    int CB = C / 16, FP = F / (16 * WG_FB), kk = k * k, per_e = FP * CB * WG_PARTS;
    size_t block = (size_t)PH * PW * 16, image = (size_t)CB * block;
    const float *xb0 = xb, *dy0 = dy;
    float *dwb0 = dwb;
#pragma omp parallel for schedule(static)
    for (long etask = 0; etask < (long)E * per_e; etask++) {
        int e = (int)(etask / per_e), task = (int)(etask % per_e);
        const float *xb = xb0 + e * xs, *dy = dy0 + e * ys;
        float *dwb = dwb0 + e * ws;
        int fp = task / (CB * WG_PARTS), cb = task / WG_PARTS % CB, part = task % WG_PARTS;
        int list[16], kept = 0, idx[WG_CPT];
        for (int c = 0; c < 16; c++)
            if (!skip_c || !skip_c[cb * 16 + c]) list[kept++] = c;
        int n = kept - part * WG_CPT < WG_CPT ? kept - part * WG_CPT : WG_CPT, fkept = 0;
        for (int f = 0; f < 16 * WG_FB; f++) fkept += !skip_f || !skip_f[fp * 16 * WG_FB + f];
        if (n <= 0 || !fkept) continue;
        for (int c = 0; c < WG_CPT; c++) idx[c] = list[part * WG_CPT + (c < n ? c : n - 1)]; /* a short task repeats its last */
        for (int t = 0; t < kk; t++) {
            int ky = t / k, kx = t % k;
            float *d[WG_FB];
            for (int b = 0; b < WG_FB; b++) d[b] = dwb + (((size_t)(fp * WG_FB + b) * CB + cb) * kk + t) * 256;
            vf a[WG_CPT][WG_FB * NB];
            for (int c = 0; c < WG_CPT; c++)
                for (int u = 0; u < WG_FB * NB; u++) a[c][u] = vload(d[u / NB] + idx[c] * 16 + u % NB * VL);
            for (int i = 0; i < count; i++) {
                const float *xi = xb + (size_t)i * image + (size_t)cb * block;
                const float *gi = dy + i * dy_image + (size_t)fp * WG_FB * dy_block;
                for (int oy = 0; oy < OH; oy++) {
                    const float *xr = xi + ((size_t)(oy * s + ky) * PW + kx) * 16;
                    const float *g = gi + (size_t)oy * dy_row * 16;
                    for (int ox = 0; ox < OW; ox++) {
                        vf v[WG_FB * NB];
                        for (int u = 0; u < WG_FB * NB; u++) v[u] = vload(g + u / NB * dy_block + (size_t)ox * 16 + u % NB * VL);
                        const float *xp = xr + (size_t)ox * s * 16;
#pragma GCC unroll 8
                        for (int c = 0; c < WG_CPT; c++) {
                            vf b = vset1(xp[idx[c]]);
                            for (int u = 0; u < WG_FB * NB; u++) a[c][u] = vfma(b, v[u], a[c][u]);
                        }
                    }
                }
            }
            for (int c = 0; c < n; c++)
                for (int u = 0; u < WG_FB * NB; u++) vstore(d[u / NB] + idx[c] * 16 + u % NB * VL, a[c][u]);
        }
    }
}

void cdb_cd_weight_grad(const float *xb, int count, int C, int PH, int PW, const float *dy, size_t dy_image,
                    size_t dy_block, int dy_row, int F, int k, int s, int OH, int OW, const uint8_t *skip_c,
                    const uint8_t *skip_f, float *dwb)
{
    weight_grad_e(1, xb, 0, count, C, PH, PW, dy, 0, dy_image, dy_block, dy_row, F, k, s, OH, OW, skip_c, skip_f, dwb,
                  0);
}

void cdb_cd_add_weight_grad(const float *dwb, int F, int C, int k, float *grad)
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
