#include "activations.h"

#include <math.h>
#include <string.h>

#include "fastmath.h"
#include "shared_math.h"

const char *const cdb_activation_names[] = {"linear", "relu",  "leaky", "relu6",   "logistic", "tanh",  "gelu",
                                        "swish",  "mish",  "hardswish", "elu", "selu",    "ramp",  "hardtan",
                                        "lhtan",  "plse",  "loggy", "relie",   "revleaky", "hard_mish", NULL};

int cdb_activation_from_name(const char *name, activation *out)
{
    if (!strcmp(name, "silu")) name = "swish";
    /* Darknet's "hard_mish" is also written "hardmish" in some cfgs. */
    if (!strcmp(name, "hardmish")) name = "hard_mish";
    for (int i = 0; cdb_activation_names[i]; i++) {
        if (!strcmp(name, cdb_activation_names[i])) {
            *out = (activation)i;
            return 0;
        }
    }
    return -1;
}

const char *cdb_activation_name(activation a) { return cdb_activation_names[a]; }

static inline float act(activation a, float x) { return activation_value(a, x); }
static inline float grad(activation a, float x) { return activation_derivative(a, x); }

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

void cdb_gelu_forward_grad(const float *x, float *y, float *g, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float v = x[i], e = fast_expf(-0.5f * v * v); /* exp(-(v/sqrt2)^2) */
        float cdf = 0.5f * (1.f + fast_erff_given_exp(v * (float)M_SQRT1_2, e));
        y[i] = v * cdf;
        g[i] = cdf + v * e * 0.3989422804014327f;
    }
}

void cdb_activate_array(activation a, const float *x, float *y, size_t n)
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

void cdb_gradient_array(activation a, const float *x, const float *dy, float *dx, size_t n)
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
