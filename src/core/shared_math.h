/* Arithmetic written once for the CPU and the GPU: the activations and
 * their derivatives, one element of SGD and of AdamW, the ChannelDropBack
 * mask and the softmax cross-entropy of one image. Plain C here; in a .cu
 * file the same functions are __host__ __device__, so both paths compile
 * the same expressions (the GPU may still round differently: it fuses
 * multiply-adds and has its own expf). */
#ifndef CDB_SHARED_MATH_H
#define CDB_SHARED_MATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "activations.h"

#ifdef __CUDACC__
#define CDB_HD __host__ __device__
#else
#define CDB_HD
#endif

static inline CDB_HD float sm_sigmoid(float x) { return 1.f / (1.f + expf(-x)); }
static inline CDB_HD float sm_softplus(float x) { return x > 20.f ? x : log1pf(expf(x)); }

/* f(x) */
static inline CDB_HD float activation_value(int a, float x)
{
    switch (a) {
    case ACT_LINEAR: return x;
    case ACT_RELU: return x > 0 ? x : 0;
    case ACT_LEAKY: return x > 0 ? x : 0.1f * x;
    case ACT_RELU6: return x < 0 ? 0 : (x > 6 ? 6 : x);
    case ACT_LOGISTIC: return sm_sigmoid(x);
    case ACT_TANH: return tanhf(x);
    case ACT_GELU: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    case ACT_SWISH: return x * sm_sigmoid(x);
    case ACT_MISH: return x * tanhf(sm_softplus(x));
    case ACT_HARDSWISH: return x <= -3 ? 0 : (x >= 3 ? x : x * (x + 3) / 6);
    case ACT_ELU: return x >= 0 ? x : expf(x) - 1;
    case ACT_SELU: return x >= 0 ? 1.0507f * x : 1.0507f * 1.6732f * (expf(x) - 1);
    case ACT_RAMP: return (x > 0 ? x : 0) + 0.1f * x;
    case ACT_HARDTAN: return x < -1 ? -1 : (x > 1 ? 1 : x);
    case ACT_LHTAN: return x < 0 ? 0.001f * x : (x > 1 ? 0.001f * (x - 1) + 1 : x);
    case ACT_PLSE: return x < -4 ? 0.01f * (x + 4) : (x > 4 ? 0.01f * (x - 4) + 1 : 0.125f * x + 0.5f);
    case ACT_LOGGY: return 2.f * sm_sigmoid(x) - 1;
    case ACT_RELIE: return x > 0 ? x : 0.01f * x;
    case ACT_REVLEAKY: return x > 0 ? x : 0.1f * x; /* Darknet computes it as leaky */
    case ACT_HARD_MISH: return x > 0 ? x : (x > -2 ? x * x / 2 + x : 0);
    default: return x;
    }
}

/* f'(x), from the pre-activation x */
static inline CDB_HD float activation_derivative(int a, float x)
{
    switch (a) {
    case ACT_LINEAR: return 1;
    case ACT_RELU: return x > 0;
    case ACT_LEAKY: return x > 0 ? 1 : 0.1f;
    case ACT_RELU6: return x > 0 && x < 6;
    case ACT_LOGISTIC: {
        float s = sm_sigmoid(x);
        return s * (1 - s);
    }
    case ACT_TANH: {
        float t = tanhf(x);
        return 1 - t * t;
    }
    case ACT_GELU:
        return 0.5f * (1.f + erff(x * 0.70710678118654752f)) + x * expf(-0.5f * x * x) * 0.3989422804014327f;
    case ACT_SWISH: {
        float s = sm_sigmoid(x);
        return s + x * s * (1 - s);
    }
    case ACT_MISH: {
        float t = tanhf(sm_softplus(x));
        return t + x * (1 - t * t) * sm_sigmoid(x);
    }
    case ACT_HARDSWISH: return x < -3 ? 0 : (x > 3 ? 1 : (2 * x + 3) / 6);
    case ACT_ELU: return x >= 0 ? 1 : expf(x);
    case ACT_SELU: return x >= 0 ? 1.0507f : 1.0507f * 1.6732f * expf(x);
    case ACT_RAMP: return (x > 0) + 0.1f;
    case ACT_HARDTAN: return x > -1 && x < 1;
    case ACT_LHTAN: return x > 0 && x < 1 ? 1 : 0.001f;
    case ACT_PLSE: return x < -4 || x > 4 ? 0.01f : 0.125f;
    case ACT_LOGGY: {
        float s = sm_sigmoid(x);
        return 2 * s * (1 - s);
    }
    case ACT_RELIE: return x > 0 ? 1 : 0.01f;
    case ACT_REVLEAKY: return x > 0 ? 1 : 0.1f;
    case ACT_HARD_MISH: return x > 0 ? 1 : (x > -2 ? x + 1 : 0);
    default: return 1;
    }
}

/* Channel, on the mask axis, of element i of a [rows][channels][inner]
 * tensor (axis_out: the row). */
static inline CDB_HD int tensor_channel_of(size_t i, int channels, int inner, int axis_out)
{
    if (axis_out) return (int)(i / ((size_t)channels * inner));
    return (int)((i / inner) % channels);
}

/* ChannelDropBack's mask of one gradient element: 0 when dropped, else g / keep. */
static inline CDB_HD float dropback_masked(float g, int dropped, float keep) { return dropped ? 0.f : g / keep; }

/* One element of torch.optim.SGD (dampening 0): d = g + wd w; with momentum
 * m = mu m + d (PyTorch starts the buffer at d: mu 0 + d is exactly that)
 * and d = m, or d + mu m with Nesterov; w -= lr d. */
static inline CDB_HD void sgd_element(float *w, float g, float *m, float lr, float wd, float mu, int nesterov)
{
    float d = g + wd * *w;
    if (mu != 0) {
        *m = mu * *m + d;
        d = nesterov ? d + mu * *m : *m;
    }
    *w -= lr * d;
}

/* One element of torch.optim.AdamW: decoupled decay, then the moments and
 * the step with step_size = lr / (1 - b1^t), bc2_sqrt = sqrt(1 - b2^t). */
static inline CDB_HD void adamw_element(float *w, float g, float *m, float *v, float lr, float wd, float b1, float b2,
                                        float eps, float step_size, float bc2_sqrt)
{
    *w *= 1.f - lr * wd;
    *m = b1 * *m + (1.f - b1) * g;
    *v = b2 * *v + (1.f - b2) * g * g;
    float denom = sqrtf(*v) / bc2_sqrt + eps;
    *w -= step_size * *m / denom;
}

/* Softmax of one image's n scores x into y, in double for the normaliser;
 * returns the cross-entropy against the target distribution t (0 when t is
 * NULL). */
static inline CDB_HD double softmax_cross_entropy(const float *x, float *y, const float *t, int n, float inv_temp)
{
    float m = x[0];
    for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    double sum = 0, k = inv_temp;
    for (int i = 0; i < n; i++) sum += exp(((double)x[i] - m) * k);
    double log_sum = log(sum);
    double loss = 0;
    for (int i = 0; i < n; i++) {
        double z = ((double)x[i] - m) * k - log_sum;
        y[i] = (float)exp(z);
        if (t && t[i] != 0) loss -= t[i] * z;
    }
    return loss;
}

#endif
