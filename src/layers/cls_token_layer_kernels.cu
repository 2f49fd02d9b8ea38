/* [cls_token] on the GPU: prepends the learned class token. */
#include "layer_kernels.cuh"
extern "C" {
#include "cls_token_layer.h"
}

extern "C" {
LAYER_GPU_TWINS(cls_token);
}

static __global__ void cls_forward_kernel(const float *in, const float *token, float *out, int D, int inputs, size_t n)
{
    FOR_EACH(i, n)
    {
        size_t b = i / (inputs + D), k = i % (inputs + D);
        out[i] = k < (size_t)D ? token[k] : in[b * inputs + k - D];
    }
}

/* One thread per feature for the token gradient (summed over the batch). */
static __global__ void cls_token_grad_kernel(const float *delta, float *grad, int D, int outputs, int batch)
{
    FOR_EACH(k, (size_t)D)
    {
        float s = 0;
        for (int b = 0; b < batch; b++) s += delta[(size_t)b * outputs + k];
        grad[k] += s;
    }
}

static __global__ void cls_input_grad_kernel(const float *delta, float *in_delta, int D, int inputs, size_t n)
{
    FOR_EACH(i, n)
    {
        size_t b = i / inputs, k = i % inputs;
        in_delta[i] += delta[b * (inputs + D) + D + k];
    }
}

void cdb_cls_token_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    (void)train;
    cls_priv *p = (cls_priv *)l->priv;
    size_t n = (size_t)l->batch * l->outputs;
    cls_forward_kernel<<<grid_for(n), THREADS>>>(GPU_F(net, l->input, (size_t)l->batch * l->inputs),
                                                 GPU_F(net, p->token->value, l->c), GPU_F(net, l->output, n), l->c,
                                                 l->inputs, n);
    LAUNCH_CHECK(cls_forward_kernel);
}

void cdb_cls_token_backward_gpu(cdb_layer *l, cdb_network *net)
{
    cls_priv *p = (cls_priv *)l->priv;
    const float *delta = GPU_F(net, l->delta, (size_t)l->batch * l->outputs);
    cls_token_grad_kernel<<<grid_for(l->c), THREADS>>>(delta, GPU_F(net, p->token->grad, l->c), l->c, l->outputs,
                                                       l->batch);
    LAUNCH_CHECK(cls_token_grad_kernel);
    if (!l->input_delta) return;
    size_t n_in = (size_t)l->batch * l->inputs;
    cls_input_grad_kernel<<<grid_for(n_in), THREADS>>>(delta, GPU_F(net, l->input_delta, n_in), l->c, l->inputs, n_in);
    LAUNCH_CHECK(cls_input_grad_kernel);
}
