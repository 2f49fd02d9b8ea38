/* [convolutional] on the GPU. With CUDNN=1: cuDNN forward, backward-data
 * and backward-filter, algorithms chosen once per layer (full FP32, no
 * TF32) with one workspace shared by all layers. Without cuDNN: im2col and
 * col2im kernels around cuBLAS, in chunks of p->gpu_chunk images. */
#include "layer_kernels.cuh"
extern "C" {
#include "convolutional_layer.h"
}

extern "C" {
LAYER_GPU_TWINS(convolutional);
}

#ifndef CUDNN /* the im2col + cuBLAS path (with cuDNN, cuDNN does all of it) */
/* col (rows = c*k*k, ld) columns [i*N, (i+1)*N) for image i of the chunk. */
static __global__ void im2col_kernel(const float *im, int count, int channels, int height, int width, int ksize, int stride,
                              int pad, int dilation, int out_h, int out_w, float *col, int image_stride)
{
    size_t N = (size_t)out_h * out_w, rows = (size_t)channels * ksize * ksize, ld = (size_t)count * N;
    FOR_EACH(idx, rows * ld)
    {
        size_t r = idx / ld, column = idx % ld;
        int i = (int)(column / N), pos = (int)(column % N);
        int y = pos / out_w, x = pos % out_w;
        int kx = (int)(r % ksize), ky = (int)((r / ksize) % ksize), c = (int)(r / ksize / ksize);
        int iy = y * stride + ky * dilation - pad, ix = x * stride + kx * dilation - pad;
        float v = 0;
        if (iy >= 0 && iy < height && ix >= 0 && ix < width)
            v = im[(size_t)i * image_stride + ((size_t)c * height + iy) * width + ix];
        col[idx] = v;
    }
}

/* im += fold(col): each input pixel gathers the column entries that read it. */
static __global__ void col2im_kernel(const float *col, int count, int channels, int height, int width, int ksize, int stride,
                              int pad, int dilation, int out_h, int out_w, float *im, int image_stride)
{
    size_t N = (size_t)out_h * out_w, ld = (size_t)count * N, per_image = (size_t)channels * height * width;
    FOR_EACH(idx, (size_t)count * per_image)
    {
        int i = (int)(idx / per_image);
        size_t rest = idx % per_image;
        int c = (int)(rest / ((size_t)height * width)), iy = (int)((rest / width) % height), ix = (int)(rest % width);
        float s = 0;
        for (int ky = 0; ky < ksize; ky++) {
            int ty = iy + pad - ky * dilation;
            if (ty < 0 || ty % stride) continue;
            int y = ty / stride;
            if (y >= out_h) continue;
            for (int kx = 0; kx < ksize; kx++) {
                int tx = ix + pad - kx * dilation;
                if (tx < 0 || tx % stride) continue;
                int x = tx / stride;
                if (x >= out_w) continue;
                size_t r = ((size_t)c * ksize + ky) * ksize + kx;
                s += col[r * ld + (size_t)i * N + (size_t)y * out_w + x];
            }
        }
        im[(size_t)i * image_stride + rest] += s;
    }
}

/* Between (filters, count*N) chunk layout and (count, filters, N) images. */
static __global__ void chunk_to_images_kernel(const float *chunk, float *images, int count, int filters, int N, int outputs)
{
    size_t W = (size_t)count * N;
    FOR_EACH(idx, (size_t)filters * W)
    {
        size_t f = idx / W, column = idx % W;
        size_t i = column / N, pos = column % N;
        images[i * outputs + f * N + pos] = chunk[idx];
    }
}

static __global__ void images_to_chunk_kernel(const float *images, float *chunk, int count, int filters, int N, int outputs)
{
    size_t W = (size_t)count * N;
    FOR_EACH(idx, (size_t)filters * W)
    {
        size_t f = idx / W, column = idx % W;
        size_t i = column / N, pos = column % N;
        chunk[idx] = images[i * outputs + f * N + pos];
    }
}
#endif

#ifdef CUDNN
struct conv_gpu {
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgo_t forward;
    cudnnConvolutionBwdDataAlgo_t backward_data;
    cudnnConvolutionBwdFilterAlgo_t backward_filter;
    size_t workspace_bytes;
};

static void destroy_gpu(cdb_layer *l)
{
    conv_gpu *g = (conv_gpu *)l->gpu_state;
    if (!g) return;
    cudnnDestroyTensorDescriptor(g->x);
    cudnnDestroyTensorDescriptor(g->y);
    cudnnDestroyFilterDescriptor(g->w);
    cudnnDestroyConvolutionDescriptor(g->conv);
    free(g);
    l->gpu_state = NULL;
}

/* The first algorithm cuDNN ranks that works (the ranking is fastest
 * first); with deterministic (the [net] key conv_deterministic), the first
 * that works and gives the same bits every run. */
template <typename Perf>
static auto first_working(const Perf *perf, int returned, int deterministic, const cdb_layer *l, const char *pass)
    -> decltype(perf[0].algo)
{
    for (int i = 0; i < returned; i++)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && (!deterministic || perf[i].determinism == CUDNN_DETERMINISTIC))
            return perf[i].algo;
    for (int i = 0; i < returned; i++)
        if (perf[i].status == CUDNN_STATUS_SUCCESS) return perf[i].algo;
    /* none: an error of its own (the arrays were zeroed, so the value
     * returned is defined, but no pass runs after a recorded error) */
    char what[128];
    snprintf(what, sizeof(what), "cuDNN proposes no working %s algorithm for layer %d (%d ranked)", pass, l->index,
             returned);
    cdb_cuda_fail(what, "cudnnGetConvolution*Algorithm_v7", __FILE__, __LINE__);
    return perf[0].algo;
}

/* Descriptors and algorithms, once per layer: the fastest algorithm cuDNN
 * ranks first among those that work. */
static conv_gpu *setup(cdb_layer *l, cdb_network *net)
{
    if (l->gpu_state) return (conv_gpu *)l->gpu_state;
    conv_priv *p = (conv_priv *)l->priv;
    cudnnHandle_t h = net->gpu_ctx->dnn;
    conv_gpu *g = (conv_gpu *)cdb_xcalloc(1, sizeof(conv_gpu));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&g->x));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&g->y));
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&g->w));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&g->conv));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(g->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, l->batch, l->c, l->h, l->w));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(g->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, l->batch, l->out_c, l->out_h,
                                           l->out_w));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(g->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, p->filters, l->c / p->groups,
                                           p->size, p->size));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(g->conv, p->pad * p->dilation, p->pad * p->dilation, p->stride,
                                                p->stride, p->dilation, p->dilation, CUDNN_CROSS_CORRELATION,
                                                CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionGroupCount(g->conv, p->groups));
    CUDNN_CHECK(cudnnSetConvolutionMathType(g->conv, CUDNN_FMA_MATH)); /* no TF32 */
    int returned = 0; /* reset before each call: 0 when a call failed */
    cudnnConvolutionFwdAlgoPerf_t fwd[8] = {};
    CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, g->x, g->w, g->conv, g->y, 8, &returned, fwd));
    g->forward = first_working(fwd, returned, net->conv.deterministic, l, "forward");
    cudnnConvolutionBwdDataAlgoPerf_t bwd_data[8] = {};
    returned = 0;
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, g->w, g->y, g->conv, g->x, 8, &returned, bwd_data));
    g->backward_data = first_working(bwd_data, returned, net->conv.deterministic, l, "backward-data");
    cudnnConvolutionBwdFilterAlgoPerf_t bwd_filter[8] = {};
    returned = 0;
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, g->x, g->y, g->conv, g->w, 8, &returned, bwd_filter));
    g->backward_filter = first_working(bwd_filter, returned, net->conv.deterministic, l, "backward-filter");
    size_t a = 0, b = 0, c = 0;
    CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, g->x, g->w, g->conv, g->y, g->forward, &a));
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(h, g->w, g->y, g->conv, g->x, g->backward_data, &b));
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, g->x, g->y, g->conv, g->w, g->backward_filter, &c));
    g->workspace_bytes = a > b ? (a > c ? a : c) : (b > c ? b : c);
    l->gpu_state = g;
    l->destroy_gpu = destroy_gpu;
    return g;
}
#endif

void cdb_convolutional_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    conv_priv *p = (conv_priv *)l->priv;
    size_t n_in = (size_t)l->batch * l->inputs, n_out = (size_t)l->batch * l->outputs;
    const float *in = GPU_F(net, l->input, n_in);
    float *out = GPU_F(net, l->output, n_out);
    float *z = p->act == ACT_LINEAR ? out : GPU_F(net, p->preact, n_out);
    const float *w = GPU_F(net, p->weights->value, p->weights->size);
#ifdef CUDNN
    conv_gpu *g = setup(l, net);
    float one = 1, zero = 0;
    float *ws = cdb_gpu_workspace(net, g->workspace_bytes / sizeof(float) + 1);
    CUDNN_CHECK(cudnnConvolutionForward(net->gpu_ctx->dnn, &one, g->x, in, g->w, w, g->conv, g->forward, ws,
                                        g->workspace_bytes, &zero, g->y, z));
#else
    int G = p->groups, F = p->filters / G, K = l->c / G * p->size * p->size, N = l->out_h * l->out_w;
    size_t rows = (size_t)l->c * p->size * p->size;
    float *col = cdb_gpu_workspace(net, (rows + p->filters) * N * p->gpu_chunk);
    float *zc = col + rows * p->gpu_chunk * N;
    for (int first = 0; first < l->batch; first += p->gpu_chunk) {
        int count = l->batch - first < p->gpu_chunk ? l->batch - first : p->gpu_chunk, W = count * N;
        im2col_kernel<<<grid_for(rows * W), THREADS>>>(in + (size_t)first * l->inputs, count, l->c, l->h, l->w, p->size,
                                                       p->stride, p->pad * p->dilation, p->dilation, l->out_h, l->out_w, col,
                                                       l->inputs);
        LAUNCH_CHECK(im2col_kernel);
        for (int g = 0; g < G; g++)
            cdb_gpu_gemm(net, 0, 0, F, W, K, 1, w + (size_t)g * F * K, K, col + (size_t)g * K * W, W, 0, zc + (size_t)g * F * W,
                     W);
        chunk_to_images_kernel<<<grid_for((size_t)p->filters * W), THREADS>>>(zc, z + (size_t)first * l->outputs, count,
                                                                              p->filters, N, l->outputs);
        LAUNCH_CHECK(chunk_to_images_kernel);
    }
#endif
    if (p->batch_normalize)
        cdb_bn_forward_gpu(&p->bn, net, z, z, train);
    else if (p->biases)
        cdb_add_bias_gpu(z, GPU_F(net, p->biases->value, p->filters), l->batch, p->filters, l->out_h * l->out_w);
    if (p->act != ACT_LINEAR) cdb_activate_gpu(p->act, z, out, n_out);
}

void cdb_convolutional_backward_gpu(cdb_layer *l, cdb_network *net)
{
    conv_priv *p = (conv_priv *)l->priv;
    size_t n_in = (size_t)l->batch * l->inputs, n_out = (size_t)l->batch * l->outputs;
    float *dz = GPU_F(net, l->delta, n_out);
    if (p->act != ACT_LINEAR) cdb_gradient_gpu(p->act, GPU_F(net, p->preact, n_out), dz, dz, n_out);
    if (p->batch_normalize)
        cdb_bn_backward_gpu(&p->bn, net, dz, dz);
    else if (p->biases)
        cdb_bias_grad_gpu(dz, GPU_F(net, p->biases->grad, p->filters), l->batch, p->filters, l->out_h * l->out_w);
    const float *in = GPU_F(net, l->input, n_in), *w = GPU_F(net, p->weights->value, p->weights->size);
    float *dw = GPU_F(net, p->weights->grad, p->weights->size);
    float *din = l->input_delta ? GPU_F(net, l->input_delta, n_in) : NULL;
#ifdef CUDNN
    conv_gpu *g = setup(l, net);
    float one = 1;
    float *ws = cdb_gpu_workspace(net, g->workspace_bytes / sizeof(float) + 1);
    CUDNN_CHECK(cudnnConvolutionBackwardFilter(net->gpu_ctx->dnn, &one, g->x, in, g->y, dz, g->conv, g->backward_filter,
                                               ws, g->workspace_bytes, &one, g->w, dw));
    if (din)
        CUDNN_CHECK(cudnnConvolutionBackwardData(net->gpu_ctx->dnn, &one, g->w, w, g->y, dz, g->conv, g->backward_data, ws,
                                                 g->workspace_bytes, &one, g->x, din));
#else
    int G = p->groups, F = p->filters / G, K = l->c / G * p->size * p->size, N = l->out_h * l->out_w;
    size_t rows = (size_t)l->c * p->size * p->size;
    float *col = cdb_gpu_workspace(net, (rows + p->filters) * N * p->gpu_chunk);
    float *dzc = col + rows * p->gpu_chunk * N;
    for (int first = 0; first < l->batch; first += p->gpu_chunk) {
        int count = l->batch - first < p->gpu_chunk ? l->batch - first : p->gpu_chunk, W = count * N;
        images_to_chunk_kernel<<<grid_for((size_t)p->filters * W), THREADS>>>(dz + (size_t)first * l->outputs, dzc, count,
                                                                              p->filters, N, l->outputs);
        LAUNCH_CHECK(images_to_chunk_kernel);
        im2col_kernel<<<grid_for(rows * W), THREADS>>>(in + (size_t)first * l->inputs, count, l->c, l->h, l->w, p->size,
                                                       p->stride, p->pad * p->dilation, p->dilation, l->out_h, l->out_w, col,
                                                       l->inputs);
        LAUNCH_CHECK(im2col_kernel);
        for (int g = 0; g < G; g++)
            cdb_gpu_gemm(net, 0, 1, F, K, W, 1, dzc + (size_t)g * F * W, W, col + (size_t)g * K * W, W, 1,
                     dw + (size_t)g * F * K, K);
        if (!din) continue;
        for (int g = 0; g < G; g++)
            cdb_gpu_gemm(net, 1, 0, K, W, F, 1, w + (size_t)g * F * K, K, dzc + (size_t)g * F * W, W, 0,
                     col + (size_t)g * K * W, W);
        size_t pixels = (size_t)count * l->inputs;
        col2im_kernel<<<grid_for(pixels), THREADS>>>(col, count, l->c, l->h, l->w, p->size, p->stride,
                                                     p->pad * p->dilation, p->dilation, l->out_h, l->out_w,
                                                     din + (size_t)first * l->inputs, l->inputs);
        LAUNCH_CHECK(col2im_kernel);
    }
#endif
}
