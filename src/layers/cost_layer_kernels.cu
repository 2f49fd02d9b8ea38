/* [cost] after [softmax] on the GPU (cost_layer.c says what it computes). */
#include "layer_kernels.cuh"
extern "C" {
#include "cost_layer.h"
}

extern "C" {
LAYER_GPU_TWINS(cost);
}

static __global__ void cost_backward_kernel(const float *p, const float *truth, float *in_delta, float k, size_t n)
{
    FOR_EACH(i, n) in_delta[i] += (p[i] - truth[i]) * k;
}

void cdb_cost_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    size_t n = (size_t)l->batch * l->outputs;
    CUDA_CHECK(cudaMemcpy(GPU_F(net, l->output, n), GPU_F(net, l->input, n), n * sizeof(float),
                          cudaMemcpyDeviceToDevice));
    if (!train) return;
    /* The loss on the host, from the probabilities (batch x classes, small). */
    cdb_gpu_pull(net, l->input, n * sizeof(float));
    net->loss += cdb_cost_extra_loss(l, net, l->input);
}

void cdb_cost_backward_gpu(cdb_layer *l, cdb_network *net)
{
    size_t n = (size_t)l->batch * l->inputs;
    float scale = ((const cost_priv *)l->priv)->scale;
    cost_backward_kernel<<<grid_for(n), THREADS>>>(GPU_F(net, l->input, n), GPU_F(net, net->truth, n),
                                                   GPU_F(net, l->input_delta, n), scale / (float)net->batch, n);
    LAUNCH_CHECK(cost_backward_kernel);
}
