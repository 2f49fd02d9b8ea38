/* [activation] on the GPU. */
#include "layer_kernels.cuh"
extern "C" {
#include "activation_layer.h"
}

extern "C" {
LAYER_GPU_TWINS(activation);
}

static activation layer_activation(const cdb_layer *l) { return ((const activation_priv *)l->priv)->act; }

void cdb_activation_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    (void)train;
    size_t n = (size_t)l->batch * l->outputs;
    cdb_activate_gpu(layer_activation(l), GPU_F(net, l->input, n), GPU_F(net, l->output, n), n);
}

void cdb_activation_backward_gpu(cdb_layer *l, cdb_network *net)
{
    if (!l->input_delta) return;
    size_t n = (size_t)l->batch * l->outputs;
    float *delta = GPU_F(net, l->delta, n);
    cdb_gradient_gpu(layer_activation(l), GPU_F(net, l->input, n), delta, delta, n);
    cdb_axpy_gpu(n, 1.f, delta, GPU_F(net, l->input_delta, n));
}
