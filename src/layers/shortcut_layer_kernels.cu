/* [shortcut] on the GPU. */
#include "layer_kernels.cuh"
extern "C" {
#include "shortcut_layer.h"
}

extern "C" {
LAYER_GPU_TWINS(shortcut);
}

static __global__ void sum_kernel(const float *a, const float *b, float *out, size_t n)
{
    FOR_EACH(i, n) out[i] = a[i] + b[i];
}

/* out = a * scale[image] + b (drop_connect; b NULL: nothing added). */
static __global__ void scaled_sum_kernel(const float *a, const float *scale, size_t per_image, const float *b, float *out,
                                  size_t n)
{
    FOR_EACH(i, n) out[i] = a[i] * scale[i / per_image] + (b ? b[i] : 0.f);
}

static __global__ void scaled_accumulate_kernel(const float *delta, const float *scale, size_t per_image, float *in_delta,
                                         size_t n)
{
    FOR_EACH(i, n) in_delta[i] += delta[i] * scale[i / per_image];
}

/* The common region of a resampling shortcut (shortcut_layer.h), one
 * thread per element: out += from (forward), from_delta += delta
 * (backward). Each `from` element meets one output element: no races. */
static __global__ void shortcut_resample_kernel(int forward, const float *src, float *dst, int batch, int mc, int mh, int mw,
                                         int out_c, int out_h, int out_w, int fc, int fh, int fw, int stride,
                                         int sample)
{
    size_t n = (size_t)batch * mc * mh * mw;
    FOR_EACH(t, n)
    {
        int i = (int)(t % mw), j = (int)(t / mw % mh), k = (int)(t / ((size_t)mw * mh) % mc);
        int b = (int)(t / ((size_t)mw * mh * mc));
        size_t o = (((size_t)b * out_c + k) * out_h + (size_t)j * sample) * out_w + (size_t)i * sample;
        size_t f = (((size_t)b * fc + k) * fh + (size_t)j * stride) * fw + (size_t)i * stride;
        if (forward)
            dst[o] += src[f];
        else
            dst[f] += src[o];
    }
}

static void resample_gpu(cdb_layer *l, cdb_network *net, int forward, const float *src, float *dst)
{
    shortcut_priv *p = (shortcut_priv *)l->priv;
    int mc = min(p->fc, l->out_c), mh = min(p->fh, l->out_h), mw = min(p->fw, l->out_w);
    size_t n = (size_t)l->batch * mc * mh * mw;
    shortcut_resample_kernel<<<grid_for(n), THREADS>>>(forward, src, dst, l->batch, mc, mh, mw, l->out_c, l->out_h,
                                                        l->out_w, p->fc, p->fh, p->fw, p->stride, p->sample);
    LAUNCH_CHECK(shortcut_resample_kernel);
}

void cdb_shortcut_forward_gpu(cdb_layer *l, cdb_network *net, int train)
{
    shortcut_priv *p = (shortcut_priv *)l->priv;
    size_t n = (size_t)l->batch * l->outputs;
    float *out = GPU_F(net, l->output, n);
    float *z = p->act == ACT_LINEAR ? out : GPU_F(net, p->preact, n);
    /* The factors are drawn on the host, as on the CPU path, and uploaded. */
    cdb_shortcut_draw(l, net, train);
    if (p->resample) {
        /* z = input * branch factor, then the common region of `from` added */
        size_t from_n = (size_t)l->batch * p->fc * p->fh * p->fw;
        cdb_gpu_push(net, p->branch_scale, (size_t)l->batch * sizeof(float));
        scaled_sum_kernel<<<grid_for(n), THREADS>>>(GPU_F(net, l->input, n), GPU_F(net, p->branch_scale, l->batch),
                                                    (size_t)l->outputs, NULL, z, n);
        LAUNCH_CHECK(scaled_sum_kernel);
        resample_gpu(l, net, 1, GPU_F(net, net->layers[p->from].output, from_n), z);
    } else if (p->drop_connect > 0) {
        cdb_gpu_push(net, p->branch_scale, (size_t)l->batch * sizeof(float));
        scaled_sum_kernel<<<grid_for(n), THREADS>>>(GPU_F(net, l->input, n), GPU_F(net, p->branch_scale, l->batch),
                                                    (size_t)l->outputs, GPU_F(net, net->layers[p->from].output, n), z,
                                                    n);
        LAUNCH_CHECK(scaled_sum_kernel);
    } else {
        sum_kernel<<<grid_for(n), THREADS>>>(GPU_F(net, l->input, n), GPU_F(net, net->layers[p->from].output, n), z, n);
        LAUNCH_CHECK(sum_kernel);
    }
    if (p->act != ACT_LINEAR) cdb_activate_gpu(p->act, z, out, n);
}

void cdb_shortcut_backward_gpu(cdb_layer *l, cdb_network *net)
{
    shortcut_priv *p = (shortcut_priv *)l->priv;
    size_t n = (size_t)l->batch * l->outputs;
    float *delta = GPU_F(net, l->delta, n);
    if (p->act != ACT_LINEAR) cdb_gradient_gpu(p->act, GPU_F(net, p->preact, n), delta, delta, n);
    if (p->resample)
        resample_gpu(l, net, 0, delta, GPU_F(net, net->layers[p->from].delta, (size_t)l->batch * p->fc * p->fh * p->fw));
    else
        cdb_axpy_gpu(n, 1.f, delta, GPU_F(net, net->layers[p->from].delta, n));
    if (!l->input_delta) return;
    if (p->drop_connect > 0 || p->resample) {
        scaled_accumulate_kernel<<<grid_for(n), THREADS>>>(delta, GPU_F(net, p->branch_scale, l->batch),
                                                           (size_t)l->outputs, GPU_F(net, l->input_delta, n), n);
        LAUNCH_CHECK(scaled_accumulate_kernel);
    } else {
        cdb_axpy_gpu(n, 1.f, delta, GPU_F(net, l->input_delta, n));
    }
}
