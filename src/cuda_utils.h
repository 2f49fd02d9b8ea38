/* The CUDA seam: device discovery and library versions for GPU builds
 * (make GPU=1 [CUDNN=1]). The layers' GPU paths build on this. */
#ifndef CDB_CUDA_UTILS_H
#define CDB_CUDA_UTILS_H

#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable CUDA devices (0 when there is no GPU or no driver). */
int cuda_device_count(void);
/* "CUDA runtime X, cuBLAS Y[, cuDNN Z]" into buf. */
void cuda_describe(char *buf, int n);

#ifdef __cplusplus
}
#endif
#endif
