/* Row-major single-precision GEMM: C = alpha * op(A) op(B) + beta * C, with
 * op(A) (M,K), op(B) (K,N), C (M,N). OpenBLAS when built with OPENBLAS=1,
 * otherwise a portable C loop nest. */
#ifndef CDB_GEMM_H
#define CDB_GEMM_H

#include <stddef.h>

void cdb_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
          int ldb, float beta, float *C, int ldc);
/* The portable implementation, always available (tests compare the two). */
void cdb_gemm_portable(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc);
/* y (rows, cols) = row in every row: the bias that a following GEMM with
 * beta = 1 adds its product to (one write pass instead of the GEMM zeroing C
 * and a second pass adding the bias). */
void cdb_broadcast_rows(float *y, const float *row, int rows, int cols);
const char *cdb_gemm_backend(void);

/* C += op(A) op(B) (alpha = beta = 1) with every element summed in a fixed
 * order: C[i][j], then fused multiply-adds over k = 0 .. K-1 in turn. An
 * element's bits therefore depend only on its own row of op(A), column of
 * op(B) and starting value: not on M, N, which other rows or columns are
 * computed, the blocking or the thread count (a BLAS promises none of
 * this). The weight gradients use it, so that leaving out dropped channels
 * (compute skipping) gives the kept ones exactly the same values. work:
 * cdb_gemm_fixed_workspace(M, N) floats. */
void cdb_gemm_fixed(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                float *C, int ldc, float *work);
size_t cdb_gemm_fixed_workspace(int M, int N);
/* Threads used by GEMM and by cdbnet's own OpenMP loops. */
void cdb_set_num_threads(int n);
int cdb_get_num_threads(void);

#endif
