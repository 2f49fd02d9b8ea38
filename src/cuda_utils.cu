#include <cstdio>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#ifdef CUDNN
#include <cudnn.h>
#endif

#include "cuda_utils.h"

extern "C" int cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
    return n;
}

extern "C" void cuda_describe(char *buf, int n)
{
    int runtime = 0, cublas_major = 0, cublas_minor = 0;
    cudaRuntimeGetVersion(&runtime);
    cublasGetProperty(MAJOR_VERSION, &cublas_major);
    cublasGetProperty(MINOR_VERSION, &cublas_minor);
    int len = snprintf(buf, n, "CUDA runtime %d.%d, cuBLAS %d.%d", runtime / 1000, (runtime % 1000) / 10, cublas_major,
                       cublas_minor);
#ifdef CUDNN
    size_t v = cudnnGetVersion();
    if (len > 0 && len < n) snprintf(buf + len, n - len, ", cuDNN %zu", v);
#else
    (void)len;
#endif
}
