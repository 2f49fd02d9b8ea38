/* [softmax] with cross-entropy on the GPU: one thread per image (the class
 * count is small), the per-image losses summed on the host in double as the
 * CPU path does. */
#include "layer_kernels.cuh"
#include "shared_math.h"
extern "C" {
#include "softmax_layer.h"
}

extern "C" {
LAYER_GPU_TWINS(softmax);
}

static __global__ void softmax_kernel(const float *x, float *y, const float *truth, float *losses, int classes, int batch,
                               float inv_temp)
{
    FOR_EACH(b, (size_t)batch)
    {
        double loss =
            softmax_cross_entropy(x + b * classes, y + b * classes, truth ? truth + b * classes : NULL, classes, inv_temp);
        if (losses) losses[b] = (float)loss;
    }
}

/* Plus the delta a [cost] after it adds (zero otherwise), over T. */
static __global__ void softmax_backward_kernel(const float *y, const float *truth, const float *delta, float *in_delta,
                                        float inv_batch, float inv_temp, size_t n, const float *scale, int classes)
{
    FOR_EACH(i, n)
    {
        if (scale) { /* class weights: the image's factor, as the CPU code */
            in_delta[i] += ((y[i] - truth[i]) * inv_batch * scale[i / (size_t)classes] + delta[i]) * inv_temp;
            continue;
        }
        float g = (y[i] - truth[i]) * inv_batch + delta[i];
        in_delta[i] += inv_temp == 1.f ? g : g * inv_temp;
    }
}

static float inverse_temperature(const cdb_layer *l) { return 1.f / ((const softmax_priv *)l->priv)->temperature; }

void cdb_softmax_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    size_t n = (size_t)l->batch * l->inputs;
    const float *truth = train ? GPU_F(net, net->truth, n) : NULL;
    float *losses = train ? GPU_F(net, net->losses, l->batch) : NULL;
    softmax_kernel<<<grid_for(l->batch), THREADS>>>(GPU_F(net, l->input, n), GPU_F(net, l->output, n), truth, losses,
                                                    l->inputs, l->batch, inverse_temperature(l));
    LAUNCH_CHECK(softmax_kernel);
    if (!train) return;
    cdb_gpu_pull(net, net->losses, (size_t)l->batch * sizeof(float));
    double total = 0;
    const float *scale = net->pass.sample_scale;
    for (int b = 0; b < l->batch; b++) total += scale ? scale[b] * (double)net->losses[b] : net->losses[b];
    net->loss += total;
}

void cdb_softmax_backward_gpu(cdb_layer *l, cdb_network *net)
{
    if (!l->input_delta) return;
    size_t n = (size_t)l->batch * l->inputs;
    /* the trainer pushed this subdivision's factors to their twin */
    const float *scale = net->pass.sample_scale ? GPU_F(net, net->pass.sample_scale, l->batch) : NULL;
    softmax_backward_kernel<<<grid_for(n), THREADS>>>(GPU_F(net, l->output, n), GPU_F(net, net->truth, n),
                                                      GPU_F(net, l->delta, n), GPU_F(net, l->input_delta, n),
                                                      1.f / (float)net->batch, inverse_temperature(l), n, scale,
                                                      l->inputs);
    LAUNCH_CHECK(softmax_backward_kernel);
}
