#include "activations.h"

#include <math.h>
#include <string.h>

#include "fastmath.h"

const char *const activation_names[] = {"linear", "relu", "leaky", "relu6", "logistic", "tanh",
                                        "gelu",   "swish", "mish", "hardswish", NULL};

int activation_from_name(const char *name, activation *out)
{
    if (!strcmp(name, "silu")) name = "swish";
    for (int i = 0; activation_names[i]; i++) {
        if (!strcmp(name, activation_names[i])) {
            *out = (activation)i;
            return 0;
        }
    }
    return -1;
}

const char *activation_name(activation a) { return activation_names[a]; }

static inline float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }
static inline float softplus(float x) { return x > 20.f ? x : log1pf(expf(x)); }

static inline float act(activation a, float x)
{
    switch (a) {
    case ACT_LINEAR: return x;
    case ACT_RELU: return x > 0 ? x : 0;
    case ACT_LEAKY: return x > 0 ? x : 0.1f * x;
    case ACT_RELU6: return x < 0 ? 0 : (x > 6 ? 6 : x);
    case ACT_LOGISTIC: return sigmoid(x);
    case ACT_TANH: return tanhf(x);
    case ACT_GELU: return 0.5f * x * (1.f + erff(x * (float)M_SQRT1_2));
    case ACT_SWISH: return x * sigmoid(x);
    case ACT_MISH: return x * tanhf(softplus(x));
    case ACT_HARDSWISH: return x <= -3 ? 0 : (x >= 3 ? x : x * (x + 3) / 6);
    default: return x;
    }
}

static inline float grad(activation a, float x)
{
    switch (a) {
    case ACT_LINEAR: return 1;
    case ACT_RELU: return x > 0;
    case ACT_LEAKY: return x > 0 ? 1 : 0.1f;
    case ACT_RELU6: return x > 0 && x < 6;
    case ACT_LOGISTIC: {
        float s = sigmoid(x);
        return s * (1 - s);
    }
    case ACT_TANH: {
        float t = tanhf(x);
        return 1 - t * t;
    }
    case ACT_GELU:
        return 0.5f * (1.f + erff(x * (float)M_SQRT1_2)) + x * expf(-0.5f * x * x) * 0.3989422804014327f;
    case ACT_SWISH: {
        float s = sigmoid(x);
        return s + x * s * (1 - s);
    }
    case ACT_MISH: {
        float t = tanhf(softplus(x));
        return t + x * (1 - t * t) * sigmoid(x);
    }
    case ACT_HARDSWISH: return x < -3 ? 0 : (x > 3 ? 1 : (2 * x + 3) / 6);
    default: return 1;
    }
}

/* GELU gets its own loops over the vectorisable fast_erff/fast_expf: it is
 * the activation of every transformer MLP. */
static void gelu_forward(const float *x, float *y, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.f + fast_erff(x[i] * (float)M_SQRT1_2));
}

static void gelu_backward(const float *x, const float *dy, float *dx, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float g = 0.5f * (1.f + fast_erff(v * (float)M_SQRT1_2)) + v * fast_expf(-0.5f * v * v) * 0.3989422804014327f;
        dx[i] = dy[i] * g;
    }
}

void gelu_forward_grad(const float *x, float *y, float *g, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float v = x[i], e = fast_expf(-0.5f * v * v); /* exp(-(v/sqrt2)^2) */
        float cdf = 0.5f * (1.f + fast_erff_given_exp(v * (float)M_SQRT1_2, e));
        y[i] = v * cdf;
        g[i] = cdf + v * e * 0.3989422804014327f;
    }
}

void activate_array(activation a, const float *x, float *y, size_t n)
{
    if (a == ACT_LINEAR) {
        if (y != x) memcpy(y, x, n * sizeof(float));
        return;
    }
    if (a == ACT_GELU) {
        gelu_forward(x, y, n);
        return;
    }
    if (a == ACT_RELU) {
        for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0.f;
        return;
    }
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] = act(a, x[i]);
}

void gradient_array(activation a, const float *x, const float *dy, float *dx, size_t n)
{
    if (a == ACT_LINEAR) {
        if (dx != dy) memcpy(dx, dy, n * sizeof(float));
        return;
    }
    if (a == ACT_GELU) {
        gelu_backward(x, dy, dx, n);
        return;
    }
    if (a == ACT_RELU) {
        for (size_t i = 0; i < n; i++) dx[i] = x[i] > 0 ? dy[i] : 0.f;
        return;
    }
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * grad(a, x[i]);
}
