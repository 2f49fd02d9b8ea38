/* Fixed-order GEMM: C (M, N) += op(A) (M, K) op(B) (K, N), row-major, where
 * every element is C[i][j] followed by K fused multiply-adds in the order
 * k = 0, 1, ..., K-1 (see gemm.h). Blocked and packed like a BLAS GEMM:
 * per block of KC values of k, op(B) is packed into panels of NR columns
 * (KC x NR, contiguous) and op(A) into panels of MR rows (KC x MR); a
 * micro-tile keeps MR x NR elements of C in registers over the block. The
 * blocks of k run one after the other and C goes to memory between them
 * unchanged (a float stays a float), so blocking, packing, padding and
 * threads leave every element's arithmetic as it is. */
#include <string.h>

#include "gemm.h"
#include "simd.h"

#define MR 6
#define NV (VL == 16 ? 4 : 2) /* vectors per micro-tile row: 24 or 12 accumulators */
#define NR (NV * VL)
#define KC (VL == 16 ? 128 : 256) /* a KC x NR panel of B stays in L1 */
#define MC (MR * 48)              /* rows of A per task: 48 micro-panels */

#ifdef _OPENMP
#include <omp.h>
#endif

static int max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* per thread: the A panels of one block of MC rows and one B panel */
size_t cdb_gemm_fixed_workspace(int M, int N)
{
    (void)M, (void)N;
    return (size_t)max_threads() * (MC + NR) * KC;
}

/* Ap (rows/MR rounded up, kc, MR) from rows i0 .. i0+rows-1 of op(A); rows
 * past the end are zeros */
static void pack_a(int ta, const float *A, int lda, int i0, int rows, int k0, int kc, float *Ap)
{
    for (int p = 0; p * MR < rows; p++) {
        float *dst = Ap + (size_t)p * kc * MR;
        int r0 = i0 + p * MR, n = rows - p * MR < MR ? rows - p * MR : MR;
        for (int k = 0; k < kc; k++)
            for (int r = 0; r < MR; r++)
                dst[(size_t)k * MR + r] =
                    r < n ? (ta ? A[(size_t)(k0 + k) * lda + r0 + r] : A[(size_t)(r0 + r) * lda + k0 + k]) : 0.f;
    }
}

/* Bp (kc, NR) from columns j0 .. j0+cols-1 of op(B); columns past the end
 * are zeros */
static void pack_b(int tb, const float *B, int ldb, int j0, int cols, int k0, int kc, float *Bp)
{
    for (int k = 0; k < kc; k++) {
        float *d = Bp + (size_t)k * NR;
        if (!tb)
            memcpy(d, B + (size_t)(k0 + k) * ldb + j0, (size_t)cols * sizeof(float));
        else
            for (int j = 0; j < cols; j++) d[j] = B[(size_t)(j0 + j) * ldb + k0 + k];
        for (int j = cols; j < NR; j++) d[j] = 0.f;
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

void cdb_gemm_fixed(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                float *C, int ldc, float *work)
{
    if (M <= 0 || N <= 0 || K <= 0) return;
    int bpanels = (N + NR - 1) / NR, mtasks = (M + MC - 1) / MC, tasks = mtasks * bpanels;
    int threads = max_threads() < tasks ? max_threads() : tasks;
    (void)threads; /* without OpenMP */
    /* A task: MC rows of C against one panel of NR columns. Each thread
     * takes a fixed, contiguous run of tasks and packs what they read
     * itself, so there is one parallel region per call and no barrier
     * (a run of consecutive tasks shares its rows, packed once per block
     * of k). */
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
#ifdef _OPENMP
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
        int t = 0, nt = 1;
#endif
        int first = (int)((long)tasks * t / nt), last = (int)((long)tasks * (t + 1) / nt);
        float *Ap = work + (size_t)t * (MC + NR) * KC, *Bp = Ap + (size_t)MC * KC;
        for (int k0 = 0; k0 < K; k0 += KC) {
            int kc = K - k0 < KC ? K - k0 : KC, packed_mt = -1;
            for (int task = first; task < last; task++) {
                int mt = task / bpanels, jp = task % bpanels;
                int i_first = mt * MC, rows = M - i_first < MC ? M - i_first : MC;
                int j0 = jp * NR, cols = N - j0 < NR ? N - j0 : NR;
                if (mt != packed_mt) {
                    pack_a(trans_a, A, lda, i_first, rows, k0, kc, Ap);
                    packed_mt = mt;
                }
                pack_b(trans_b, B, ldb, j0, cols, k0, kc, Bp);
                for (int p = 0; p * MR < rows; p++) {
                    int i0 = i_first + p * MR, n = rows - p * MR < MR ? rows - p * MR : MR;
                    const float *ap = Ap + (size_t)p * kc * MR;
                    float *c = C + (size_t)i0 * ldc + j0;
                    if (n == MR && cols == NR) {
                        micro_tile(NV, kc, ap, Bp, c, (size_t)ldc);
                        continue;
                    }
                    /* an edge tile through a full one: padding only adds
                     * elements that are thrown away */
                    float tile[MR * NR];
                    memset(tile, 0, sizeof tile);
                    for (int r = 0; r < n; r++) memcpy(tile + r * NR, c + (size_t)r * ldc, (size_t)cols * sizeof(float));
                    micro_tile((cols + VL - 1) / VL, kc, ap, Bp, tile, NR);
                    for (int r = 0; r < n; r++) memcpy(c + (size_t)r * ldc, tile + r * NR, (size_t)cols * sizeof(float));
                }
            }
        }
    }
}
