/* Shared by the .cu files: CUDA headers, the GPU context, error checks and
 * launch helpers. */
#ifndef CDB_CUDA_COMMON_CUH
#define CDB_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#ifdef CUDNN
#include <cudnn.h>
#endif

extern "C" {
#include "activations.h"
#include "cuda_utils.h"
#include "network.h"
}

struct gpu_twin_entry {
    const void *host;
    void *dev;
    size_t bytes;
};

struct gpu_context {
    int device;
    cublasHandle_t blas;
#ifdef CUDNN
    cudnnHandle_t dnn;
#endif
    gpu_twin_entry *table; /* open addressing on the host pointer */
    size_t capacity, count;
    float *workspace;
    size_t workspace_floats;
};

void cdb_cuda_fail(const char *what, const char *call, const char *file, int line);
#define CUDA_CHECK(call)                                                                            \
    do {                                                                                            \
        cudaError_t cuda_status_ = (call);                                                          \
        if (cuda_status_ != cudaSuccess) cdb_cuda_fail(cudaGetErrorString(cuda_status_), #call, __FILE__, __LINE__); \
    } while (0)
#define CUBLAS_CHECK(call)                                                                          \
    do {                                                                                            \
        cublasStatus_t blas_status_ = (call);                                                       \
        if (blas_status_ != CUBLAS_STATUS_SUCCESS) cdb_cuda_fail(cublasGetStatusString(blas_status_), #call, __FILE__, __LINE__); \
    } while (0)
#ifdef CUDNN
#define CUDNN_CHECK(call)                                                                           \
    do {                                                                                            \
        cudnnStatus_t dnn_status_ = (call);                                                         \
        if (dnn_status_ != CUDNN_STATUS_SUCCESS) cdb_cuda_fail(cudnnGetErrorString(dnn_status_), #call, __FILE__, __LINE__); \
    } while (0)
#endif
/* After every kernel launch. */
#define LAUNCH_CHECK(kernel) cdb_cuda_fail_if_launch_failed(#kernel, __FILE__, __LINE__)
void cdb_cuda_fail_if_launch_failed(const char *kernel, const char *file, int line);

#define THREADS 256
/* Grid for n elements with grid-stride loops (capped: the loops cover the rest). */
static inline unsigned grid_for(size_t n)
{
    size_t blocks = (n + THREADS - 1) / THREADS;
    if (blocks < 1) blocks = 1;
    return (unsigned)(blocks > 65535 ? 65535 : blocks);
}
#define FOR_EACH(i, n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

/* Sum of v over the THREADS threads of a block (all must call it). */
__device__ inline float block_sum(float v, float *shared)
{
    shared[threadIdx.x] = v;
    __syncthreads();
    for (int step = blockDim.x / 2; step > 0; step /= 2) {
        if (threadIdx.x < step) shared[threadIdx.x] += shared[threadIdx.x + step];
        __syncthreads();
    }
    float total = shared[0];
    __syncthreads();
    return total;
}

/* Device activations, as activations.c computes them (from the pre-activation). */
__device__ float activate_device(int a, float x);
__device__ float gradient_device(int a, float x);
void cdb_activate_gpu(activation a, const float *x, float *y, size_t n);
void cdb_gradient_gpu(activation a, const float *x, const float *dy, float *dx, size_t n);
/* y = gelu(x) (y may be x) and g = gelu'(x), as cdb_gelu_forward_grad on the CPU */
void cdb_gelu_forward_grad_gpu(const float *x, float *y, float *g, size_t n);
/* x *= g elementwise */
void cdb_multiply_gpu(float *x, const float *g, size_t n);
/* y[i] += bias[(i / spatial) % channels] and the matching reduction. */
void cdb_add_bias_gpu(float *y, const float *bias, int batch, int channels, int spatial);
void cdb_bias_grad_gpu(const float *dy, float *grad, int batch, int channels, int spatial);
/* y += x */
void cdb_axpy_gpu(size_t n, float alpha, const float *x, float *y);

#endif
