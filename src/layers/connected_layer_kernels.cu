/* [connected] on the GPU: one cuBLAS GEMM over all rows (images, or images
 * x tokens for a token sequence), as connected_layer.c. */
#include "layer_kernels.cuh"
extern "C" {
#include "connected_layer.h"
}

extern "C" {
LAYER_GPU_TWINS(connected);
}

void cdb_connected_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    connected_priv *p = (connected_priv *)l->priv;
    int B = p->rows, I = p->in, O = p->out;
    size_t n = (size_t)B * O;
    int gelu = p->act == ACT_GELU && !p->batch_normalize; /* in place, with its derivative (connected_priv) */
    float *out = GPU_F(net, l->output, n);
    float *z = p->act == ACT_LINEAR || gelu ? out : GPU_F(net, p->act_cache, n);
    cdb_gpu_gemm(net, 0, 1, B, O, I, 1, GPU_F(net, l->input, (size_t)B * I), I, GPU_F(net, p->weights->value, p->weights->size),
             I, 0, z, O);
    if (p->batch_normalize)
        cdb_bn_forward_gpu(&p->bn, net, z, z, train);
    else
        cdb_add_bias_gpu(z, GPU_F(net, p->biases->value, O), B, O, 1);
    if (gelu)
        cdb_gelu_forward_grad_gpu(z, z, GPU_F(net, p->act_cache, n), n);
    else if (p->act != ACT_LINEAR)
        cdb_activate_gpu(p->act, z, out, n);
}

void cdb_connected_backward_gpu(cdb_layer *l, cdb_network *net)
{
    connected_priv *p = (connected_priv *)l->priv;
    int B = p->rows, I = p->in, O = p->out;
    float *dz = GPU_F(net, l->delta, (size_t)B * O);
    if (p->act == ACT_GELU && !p->batch_normalize)
        cdb_multiply_gpu(dz, GPU_F(net, p->act_cache, (size_t)B * O), (size_t)B * O);
    else if (p->act != ACT_LINEAR)
        cdb_gradient_gpu(p->act, GPU_F(net, p->act_cache, (size_t)B * O), dz, dz, (size_t)B * O);
    if (p->batch_normalize)
        cdb_bn_backward_gpu(&p->bn, net, dz, dz);
    else
        cdb_bias_grad_gpu(dz, GPU_F(net, p->biases->grad, O), B, O, 1);
    cdb_gpu_gemm(net, 1, 0, O, I, B, 1, dz, O, GPU_F(net, l->input, (size_t)B * I), I,
             1, GPU_F(net, p->weights->grad, p->weights->size), I);
    if (l->input_delta)
        cdb_gpu_gemm(net, 0, 0, B, I, O, 1, dz, O, GPU_F(net, p->weights->value, p->weights->size), I, 1,
                 GPU_F(net, l->input_delta, (size_t)B * I), I);
}
