/* The CUDA side of cdbnet (GPU builds: make GPU=1 [CUDNN=1]), as seen from
 * C. A network on the GPU keeps a *device twin* of every host array the
 * kernels touch (parameters, gradients, optimizer state, outputs, deltas,
 * layer scratch): cdb_gpu_twin() finds it by the host pointer, creating and
 * uploading it on first use, so a layer's GPU code reads like its CPU code
 * with each array replaced by its twin. Host copies are brought up to date
 * only when asked (cdb_gpu_pull, cdb_network_sync_to_host): for saving weights,
 * validation on the CPU, or tests.
 *
 * CUDA errors are never fatal: the first is recorded (cdb_last_error names
 * the call and file:line) and cdb_gpu_failed() is set from then on; the build,
 * step and save paths check it and return their error. */
#ifndef CDB_CUDA_UTILS_H
#define CDB_CUDA_UTILS_H

#include <stddef.h>

#include "train_config.h"

#ifdef __cplusplus
extern "C" {
#endif

struct cdb_network;
struct cdb_moments;

/* Number of usable CUDA devices (0 when there is no GPU or no driver). */
int cdb_cuda_device_count(void);
/* "CUDA runtime X, cuBLAS Y[, cuDNN Z]" into buf. */
void cdb_cuda_describe(char *buf, int n);

/* Put the network on device `device`: handles, twins of every parameter,
 * weights-file array and optimizer state, uploaded from the host. Returns
 * 0, or -1 with the error recorded (no such device). */
int cdb_gpu_init(struct cdb_network *net, int device);
void cdb_gpu_release(struct cdb_network *net);

void *cdb_gpu_twin(struct cdb_network *net, const void *host, size_t bytes);
#define GPU_F(net, host, n) ((float *)cdb_gpu_twin((net), (host), (size_t)(n) * sizeof(float)))
void cdb_gpu_push(struct cdb_network *net, const void *host, size_t bytes); /* host -> twin */
void cdb_gpu_pull(struct cdb_network *net, void *host, size_t bytes);       /* twin -> host */
void cdb_gpu_zero(struct cdb_network *net, const void *host, size_t bytes);  /* twin = 0 */
void cdb_gpu_synchronize(void);
/* Whether any CUDA call has failed in this process. */
int cdb_gpu_failed(void);
/* The end of a process's use of the device (cudaDeviceReset): what the
 * GPU suite calls last, so that a leak check sees only real leaks. */
void cdb_gpu_device_reset(void);

/* Row-major C = alpha op(A) op(B) + beta C on device pointers (cuBLAS,
 * full FP32: no TF32). */
void cdb_gpu_gemm(struct cdb_network *net, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
              int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* The same for `count` products at fixed strides (floats) between them. */
void cdb_gpu_gemm_batched(struct cdb_network *net, int trans_a, int trans_b, int M, int N, int K, float alpha,
                      const float *A, int lda, long stride_a, const float *B, int ldb, long stride_b, float beta,
                      float *C, int ldc, long stride_c, int count);
/* Shared device scratch of at least `floats` floats (grows, never shrinks). */
float *cdb_gpu_workspace(struct cdb_network *net, size_t floats);

/* The optimizer step on the device (optimizer_kernels.cu). */
void cdb_gpu_optimizer_update(struct cdb_network *net, struct cdb_moments *state, const train_config *cfg, float lr,
                              int step);
/* The sum of the squares of the n floats of host's device twin (cuBLAS's
 * nrm2, squared), and the twin scaled by a in place: gradient clipping. */
double cdb_gpu_sum_squares(struct cdb_network *net, const float *host, size_t n);
void cdb_gpu_scale(struct cdb_network *net, float *host, size_t n, float a);
/* ema = lerp(ema, w, weight) on the device twins of n floats (torch.lerp's
 * two-sided formula, as the CPU code). */
void cdb_gpu_ema_update(struct cdb_network *net, float *ema, const float *w, size_t n, float weight);
/* Free the device twin of `host` (an array about to be freed, which a
 * later allocation could reuse the address of); nothing when it has none. */
void cdb_gpu_forget(struct cdb_network *net, const void *host);
/* Download / upload every weights-file array and optimizer state. */
int cdb_network_sync_to_host(struct cdb_network *net);   /* 0, or -1 after a CUDA error */
int cdb_network_sync_to_device(struct cdb_network *net);

#ifdef __cplusplus
}
#endif
#endif
