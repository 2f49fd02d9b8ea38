/* [tokens] on the GPU: (b, c, h*w) <-> (b, h*w, c) transposes. */
#include "layer_kernels.cuh"

extern "C" {
LAYER_GPU_TWINS(tokens);
}

static __global__ void tokens_kernel(const float *in, float *out, int C, int T, size_t n, int accumulate_back)
{
    FOR_EACH(i, n)
    {
        size_t b = i / ((size_t)C * T), rest = i % ((size_t)C * T);
        size_t c = rest / T, t = rest % T;
        size_t token_index = b * (size_t)C * T + t * C + c;
        if (accumulate_back)
            out[i] += in[token_index]; /* in: the sequence delta, out: the image delta */
        else
            out[token_index] = in[i];
    }
}

void cdb_tokens_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    (void)train;
    size_t n = (size_t)l->batch * l->inputs;
    tokens_kernel<<<grid_for(n), THREADS>>>(GPU_F(net, l->input, n), GPU_F(net, l->output, n), l->c, l->h * l->w, n, 0);
    LAUNCH_CHECK(tokens_kernel);
}

void cdb_tokens_backward_gpu(cdb_layer *l, cdb_network *net)
{
    if (!l->input_delta) return;
    size_t n = (size_t)l->batch * l->inputs;
    tokens_kernel<<<grid_for(n), THREADS>>>(GPU_F(net, l->delta, n), GPU_F(net, l->input_delta, n), l->c, l->h * l->w, n,
                                            1);
    LAUNCH_CHECK(tokens_kernel);
}
