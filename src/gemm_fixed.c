/* Fixed-order GEMM: C (M, N) += op(A) (M, K) op(B) (K, N), row-major, where
 * every element is C[i][j] followed by K fused multiply-adds in the order
 * k = 0, 1, ..., K-1 (see gemm.h). Blocked and packed like a BLAS GEMM:
 * per block of KC values of k, op(B) is packed into panels of NR columns
 * (KC x NR, contiguous) and op(A) into panels of MR rows (KC x MR); a
 * micro-tile keeps MR x NR elements of C in registers over the block. The
 * blocks of k run one after the other and C goes to memory between them
 * unchanged (a float stays a float), so blocking, packing, padding and
 * threads leave every element's arithmetic as it is. */
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "simd.h"

#define MR 6
#define NV (VL == 16 ? 4 : 2) /* vectors per micro-tile row: 24 or 12 accumulators */
#define NR (NV * VL)
#define KC (VL == 16 ? 128 : 256) /* a KC x NR panel of B stays in L1 */
#define MC (MR * 48)              /* rows of A per task: 48 micro-panels */

size_t gemm_fixed_workspace(int M, int N)
{
    size_t mp = (size_t)(M + MR - 1) / MR * MR, np = (size_t)(N + NR - 1) / NR * NR;
    return (mp + np) * KC;
}

/* Ap (ceil(M/MR), kc, MR): rows past M are zeros */
static void pack_a(int ta, const float *A, int lda, int M, int k0, int kc, float *Ap)
{
    int panels = (M + MR - 1) / MR;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < panels; p++) {
        float *dst = Ap + (size_t)p * kc * MR;
        int i0 = p * MR, rows = M - i0 < MR ? M - i0 : MR;
        for (int k = 0; k < kc; k++)
            for (int r = 0; r < MR; r++)
                dst[(size_t)k * MR + r] =
                    r < rows ? (ta ? A[(size_t)(k0 + k) * lda + i0 + r] : A[(size_t)(i0 + r) * lda + k0 + k]) : 0.f;
    }
}

/* Bp (ceil(N/NR), kc, NR): columns past N are zeros */
static void pack_b(int tb, const float *B, int ldb, int N, int k0, int kc, float *Bp)
{
    int panels = (N + NR - 1) / NR;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < panels; p++) {
        float *dst = Bp + (size_t)p * kc * NR;
        int j0 = p * NR, cols = N - j0 < NR ? N - j0 : NR;
        for (int k = 0; k < kc; k++) {
            float *d = dst + (size_t)k * NR;
            if (!tb) {
                const float *src = B + (size_t)(k0 + k) * ldb + j0;
                memcpy(d, src, (size_t)cols * sizeof(float));
            } else {
                for (int j = 0; j < cols; j++) d[j] = B[(size_t)(j0 + j) * ldb + k0 + k];
            }
            for (int j = cols; j < NR; j++) d[j] = 0.f;
        }
    }
}

/* c (MR rows, ldc apart, W vectors of columns) += the kc products of one A
 * panel and the first W vectors of one B panel (W < NV for the last panel
 * of a narrow C: no multiply-adds on columns that are all padding). Every
 * variant gives each element the same chain of multiply-adds. */
#define DEFINE_MICRO_TILE(name, W)                                                                                 \
    static void name(int kc, const float *ap, const float *bp, float *c, size_t ldc)                               \
    {                                                                                                              \
        vf acc[MR][W];                                                                                             \
        for (int r = 0; r < MR; r++)                                                                               \
            for (int v = 0; v < W; v++) acc[r][v] = vload(c + r * ldc + v * VL);                                   \
        for (int k = 0; k < kc; k++) {                                                                             \
            vf b[W];                                                                                               \
            for (int v = 0; v < W; v++) b[v] = vload(bp + (size_t)k * NR + v * VL);                                \
            _Pragma("GCC unroll 6") for (int r = 0; r < MR; r++)                                                   \
            {                                                                                                      \
                vf a = vset1(ap[(size_t)k * MR + r]);                                                              \
                for (int v = 0; v < W; v++) acc[r][v] = vfma(a, b[v], acc[r][v]);                                  \
            }                                                                                                      \
        }                                                                                                          \
        for (int r = 0; r < MR; r++)                                                                               \
            for (int v = 0; v < W; v++) vstore(c + r * ldc + v * VL, acc[r][v]);                                   \
    }

DEFINE_MICRO_TILE(micro_tile_1, 1)
DEFINE_MICRO_TILE(micro_tile_2, 2)
#if NV == 4
DEFINE_MICRO_TILE(micro_tile_3, 3)
DEFINE_MICRO_TILE(micro_tile_4, 4)
#endif

static void micro_tile(int vectors, int kc, const float *ap, const float *bp, float *c, size_t ldc)
{
    switch (vectors) {
    case 1: micro_tile_1(kc, ap, bp, c, ldc); break;
#if NV == 4
    case 3: micro_tile_3(kc, ap, bp, c, ldc); break;
    case 4: micro_tile_4(kc, ap, bp, c, ldc); break;
#endif
    default: micro_tile_2(kc, ap, bp, c, ldc); break;
    }
}

void gemm_fixed(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                float *C, int ldc, float *work)
{
    if (M <= 0 || N <= 0 || K <= 0) return;
    int apanels = (M + MR - 1) / MR, bpanels = (N + NR - 1) / NR, mtasks = (M + MC - 1) / MC;
    float *Ap = work, *Bp = work + (size_t)apanels * MR * KC;
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC;
        pack_a(trans_a, A, lda, M, k0, kc, Ap);
        pack_b(trans_b, B, ldb, N, k0, kc, Bp);
        /* a task: MC rows of C against one panel of B (in L1), the rows' A
         * panels in L2 across the task's consecutive B panels */
#pragma omp parallel for collapse(2) schedule(static)
        for (int mt = 0; mt < mtasks; mt++)
            for (int jp = 0; jp < bpanels; jp++) {
                int j0 = jp * NR, cols = N - j0 < NR ? N - j0 : NR;
                const float *bp = Bp + (size_t)jp * kc * NR;
                int p_end = (mt + 1) * (MC / MR) < apanels ? (mt + 1) * (MC / MR) : apanels;
                for (int p = mt * (MC / MR); p < p_end; p++) {
                    int i0 = p * MR, rows = M - i0 < MR ? M - i0 : MR;
                    const float *ap = Ap + (size_t)p * kc * MR;
                    float *c = C + (size_t)i0 * ldc + j0;
                    if (rows == MR && cols == NR) {
                        micro_tile(NV, kc, ap, bp, c, (size_t)ldc);
                        continue;
                    }
                    /* an edge tile through a full one: padding only adds
                     * elements that are thrown away */
                    float tile[MR * NR];
                    memset(tile, 0, sizeof tile);
                    for (int r = 0; r < rows; r++) memcpy(tile + r * NR, c + (size_t)r * ldc, (size_t)cols * sizeof(float));
                    micro_tile((cols + VL - 1) / VL, kc, ap, bp, tile, NR);
                    for (int r = 0; r < rows; r++) memcpy(c + (size_t)r * ldc, tile + r * NR, (size_t)cols * sizeof(float));
                }
            }
    }
}
