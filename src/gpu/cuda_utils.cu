#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cuda_common.cuh"
extern "C" {
#include "optimizer.h"
}

static int cuda_failures;

/* Never fatal: the first failure is recorded (cdb_last_error) and every
 * later step, save or build sees cdb_gpu_failed() and returns its error. */
void cdb_cuda_fail(const char *what, const char *call, const char *file, int line)
{
    if (cuda_failures++) return;
#ifdef CUDA_DEBUG_SYNC
    const char *hint = "";
#else
    const char *hint = " (a kernel fault shows at the next synchronising call: build with DEBUG_SYNC=1 to find the "
                       "kernel)";
#endif
    cdb_set_error("CUDA error: %s in %s at %s:%d%s", what, call, file, line, hint);
}

extern "C" int cdb_gpu_failed(void) { return cuda_failures > 0; }

extern "C" void cdb_gpu_device_reset(void)
{
    if (cdb_cuda_device_count() > 0) cudaDeviceReset();
}

void cdb_cuda_fail_if_launch_failed(const char *kernel, const char *file, int line)
{
    cudaError_t status = cudaGetLastError();
    if (status != cudaSuccess) cdb_cuda_fail(cudaGetErrorString(status), kernel, file, line);
#ifdef CUDA_DEBUG_SYNC
    status = cudaDeviceSynchronize();
    if (status != cudaSuccess) cdb_cuda_fail(cudaGetErrorString(status), kernel, file, line);
#endif
}

extern "C" int cdb_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
    return n;
}

extern "C" void cdb_cuda_describe(char *buf, int n)
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

static size_t slot_of(const gpu_context *g, const void *host)
{
    uint64_t h = (uint64_t)(uintptr_t)host;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (size_t)h & (g->capacity - 1);
}

static gpu_twin_entry *find_entry(gpu_context *g, const void *host)
{
    size_t i = slot_of(g, host);
    while (g->table[i].host && g->table[i].host != host) i = (i + 1) & (g->capacity - 1);
    return &g->table[i];
}

static int grow(gpu_context *g)
{
    gpu_twin_entry *old = g->table;
    size_t old_capacity = g->capacity, capacity = old_capacity ? 2 * old_capacity : 1024;
    gpu_twin_entry *table = (gpu_twin_entry *)cdb_xcalloc(capacity, sizeof(gpu_twin_entry));
    if (!table) return -1;
    g->table = table;
    g->capacity = capacity;
    for (size_t i = 0; i < old_capacity; i++)
        if (old[i].host) *find_entry(g, old[i].host) = old[i];
    free(old);
    return 0;
}

extern "C" double cdb_gpu_sum_squares(cdb_network *net, const float *host, size_t n)
{
    const float *d = (const float *)cdb_gpu_twin(net, host, n * sizeof(float));
    float r = 0;
    if (!d) return NAN;
    CUBLAS_CHECK(cublasSnrm2(net->gpu_ctx->blas, (int)n, d, 1, &r));
    return (double)r * r;
}

extern "C" void cdb_gpu_scale(cdb_network *net, float *host, size_t n, float a)
{
    float *d = (float *)cdb_gpu_twin(net, host, n * sizeof(float));
    if (!d) return;
    CUBLAS_CHECK(cublasSscal(net->gpu_ctx->blas, (int)n, &a, d, 1));
}

extern "C" void cdb_gpu_forget(cdb_network *net, const void *host)
{
    gpu_context *g = net->gpu_ctx;
    if (!g || !host || !g->capacity) return;
    gpu_twin_entry *e = find_entry(g, host);
    if (!e->host) return;
    if (e->dev) cudaFree(e->dev);
    /* linear probing: the entries after it in its run are placed again */
    size_t i = (size_t)(e - g->table);
    g->table[i].host = NULL;
    g->table[i].dev = NULL;
    g->table[i].bytes = 0;
    g->count--;
    for (size_t j = (i + 1) & (g->capacity - 1); g->table[j].host; j = (j + 1) & (g->capacity - 1)) {
        gpu_twin_entry moved = g->table[j];
        g->table[j].host = NULL;
        g->table[j].dev = NULL;
        g->table[j].bytes = 0;
        *find_entry(g, moved.host) = moved;
    }
}

extern "C" void *cdb_gpu_twin(cdb_network *net, const void *host, size_t bytes)
{
    gpu_context *g = net->gpu_ctx;
    if (!host) {
        cdb_cuda_fail("no host array", "gpu_twin", __FILE__, __LINE__);
        return NULL;
    }
    if (2 * (g->count + 1) > g->capacity && grow(g)) {
        cdb_cuda_fail("out of host memory for the table of device twins", "gpu_twin", __FILE__, __LINE__);
        return NULL;
    }
    gpu_twin_entry *e = find_entry(g, host);
    if (e->host) {
        if (bytes > e->bytes) {
            cdb_cuda_fail("a device twin is smaller than requested", "gpu_twin", __FILE__, __LINE__);
            return NULL;
        }
        return e->dev;
    }
    e->host = host;
    e->bytes = bytes;
    CUDA_CHECK(cudaMalloc(&e->dev, bytes ? bytes : 1));
    CUDA_CHECK(cudaMemcpy(e->dev, host, bytes, cudaMemcpyHostToDevice));
    g->count++;
    return e->dev;
}

extern "C" void cdb_gpu_push(cdb_network *net, const void *host, size_t bytes)
{
    void *dev = cdb_gpu_twin(net, host, bytes);
    if (!dev) return;
    CUDA_CHECK(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice));
}

extern "C" void cdb_gpu_pull(cdb_network *net, void *host, size_t bytes)
{
    void *dev = cdb_gpu_twin(net, host, bytes);
    if (!dev) return;
    CUDA_CHECK(cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost));
}

extern "C" void cdb_gpu_zero(cdb_network *net, const void *host, size_t bytes)
{
    void *dev = cdb_gpu_twin(net, host, bytes);
    if (dev) CUDA_CHECK(cudaMemset(dev, 0, bytes));
}

extern "C" void cdb_gpu_synchronize(void) { CUDA_CHECK(cudaDeviceSynchronize()); }

extern "C" void cdb_gpu_gemm(cdb_network *net, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                         int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M == 0 || N == 0) return;
    /* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T. */
    CUBLAS_CHECK(cublasSgemm(net->gpu_ctx->blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                             N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc));
}

extern "C" void cdb_gpu_gemm_batched(cdb_network *net, int trans_a, int trans_b, int M, int N, int K, float alpha,
                                 const float *A, int lda, long stride_a, const float *B, int ldb, long stride_b,
                                 float beta, float *C, int ldc, long stride_c, int count)
{
    if (M == 0 || N == 0 || count == 0) return;
    CUBLAS_CHECK(cublasSgemmStridedBatched(net->gpu_ctx->blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                           trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, ldb, stride_b, A,
                                           lda, stride_a, &beta, C, ldc, stride_c, count));
}

extern "C" float *cdb_gpu_workspace(cdb_network *net, size_t floats)
{
    gpu_context *g = net->gpu_ctx;
    if (floats > g->workspace_floats) {
        if (g->workspace) CUDA_CHECK(cudaFree(g->workspace));
        g->workspace = NULL;
        g->workspace_floats = 0;
        CUDA_CHECK(cudaMalloc(&g->workspace, floats * sizeof(float)));
        if (!g->workspace) return NULL; /* the error is recorded; the size stays 0, so the next call tries again */
        g->workspace_floats = floats;
    }
    return g->workspace;
}

/* The arrays that make up the trained state: weights-file arrays and
 * trainable tensors (a trainer moves its optimizer state itself). */
static void for_each_state_array(cdb_network *net, void (*fn)(cdb_network *, void *, size_t))
{
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].nio; k++)
            fn(net, net->layers[i].io[k], net->layers[i].io_size[k] * sizeof(float));
    for (int i = 0; i < net->nparams; i++) {
        cdb_param *p = net->params[i];
        fn(net, p->value, p->size * sizeof(float));
    }
}

static void push_array(cdb_network *net, void *host, size_t bytes) { cdb_gpu_push(net, host, bytes); }
static void pull_array(cdb_network *net, void *host, size_t bytes) { cdb_gpu_pull(net, host, bytes); }

extern "C" int cdb_network_sync_to_host(cdb_network *net)
{
    if (net->gpu) for_each_state_array(net, pull_array);
    return net->gpu && cdb_gpu_failed() ? -1 : 0;
}

extern "C" int cdb_network_sync_to_device(cdb_network *net)
{
    if (net->gpu) for_each_state_array(net, push_array);
    return net->gpu && cdb_gpu_failed() ? -1 : 0;
}

extern "C" int cdb_gpu_init(cdb_network *net, int device)
{
    if (net->sync_bn && net->ranks > 1) {
        cdb_set_error("%s: sync_bn=1 runs on CPU ranks only (the GPU batch norm has no exchange): add -cpu, or drop "
                      "sync_bn",
                      net->cfg_path);
        return -1;
    }
    int count = cdb_cuda_device_count();
    if (device < 0 || device >= count) {
        cdb_set_error("no CUDA device %d (this machine has %d)", device, count);
        return -1;
    }
    CUDA_CHECK(cudaSetDevice(device));
    if (cdb_gpu_failed()) return -1;
    gpu_context *g = (gpu_context *)cdb_xcalloc(1, sizeof(gpu_context));
    if (!g) return -1;
    g->device = device;
    CUBLAS_CHECK(cublasCreate(&g->blas));
    CUBLAS_CHECK(cublasSetMathMode(g->blas, CUBLAS_PEDANTIC_MATH)); /* full FP32, no TF32 */
#ifdef CUDNN
    CUDNN_CHECK(cudnnCreate(&g->dnn));
#endif
    net->gpu_ctx = g;
    net->gpu = 1;
    /* The optimizer state the host holds goes with the weights (a trainer
     * allocates what is missing at its first step, cdb_optimizer_prepare). */
    net->losses = (float *)cdb_xcalloc((size_t)net->mini_batch, sizeof(float));
    if (!net->losses || cdb_network_sync_to_device(net)) {
        cdb_gpu_release(net);
        return -1;
    }
    return 0;
}

extern "C" void cdb_gpu_release(cdb_network *net)
{
    gpu_context *g = net->gpu_ctx;
    if (!g) return;
    for (int i = 0; i < net->n; i++)
        if (net->layers[i].destroy_gpu) net->layers[i].destroy_gpu(&net->layers[i]);
    for (size_t i = 0; i < g->capacity; i++)
        if (g->table[i].host && g->table[i].dev) cudaFree(g->table[i].dev);
    free(g->table);
    if (g->workspace) cudaFree(g->workspace);
    cublasDestroy(g->blas);
#ifdef CUDNN
    cudnnDestroy(g->dnn);
#endif
    free(g);
    free(net->losses);
    net->losses = NULL;
    net->gpu_ctx = NULL;
    net->gpu = 0;
}
